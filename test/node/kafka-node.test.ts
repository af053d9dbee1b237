/**
 * Kueuer on Kafka in real pods: the same single-node cluster as the other
 * real-node files (test/helpers/node.ts), with a Kafka 4 broker of its own
 * (scripts/dev/kafka.sh) bound to the node bridge's host address, which pods
 * reach and which the broker advertises, so kafkajs in the responder and
 * sidecar pods connects to it directly. Kueuer is installed with Helm and a
 * broker Secret of the user's own (KUEUER_BACKEND=kafka://…), the app is
 * go-httpbin, and clients send to the Service ClusterIP through kube-proxy.
 * The webhook's autoscaler reads the request topic's lag from the same broker.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { hasCondition, mustSucceed, type KubeJson } from '../helpers/control-plane.js';
import { buildImagesAsync } from '../helpers/images.js';
import { helmInstallOnKafka, startKafkaOnBridge, type KafkaOnNode } from '../helpers/kafka-install.js';
import { startRealCluster, type RealCluster } from '../helpers/node.js';
import { forwardTcp, runTool, userEnv, type TcpForward } from '../helpers/real-install.js';
import { httpbinDeployment, sleep, waitFor } from './fixtures.js';
import { load, request, summarize } from './load.js';

const NS = 'orders';
/** A port of its own (not the suite's shared broker on 29092) and a data directory of its own. */
const KAFKA_PORT = '29392';

describe('Kueuer on Kafka, in real pods', () => {
  let cluster: RealCluster;
  let kafka: KafkaOnNode | undefined;
  /** The suite's Redis, reached by the responder pods through the node bridge: the shared store of asynchronous requests. */
  let redis: TcpForward | undefined;
  let httpbinImage = '';
  const kubectl = (...args: string[]) => cluster.controlPlane.kubectl(args);
  const getJson = (...args: string[]): KubeJson => cluster.controlPlane.getJson(...args);
  const ok = mustSucceed;
  const pods = (app: string): KubeJson[] => (getJson('pods', '-n', NS, '-l', `app=${app}`).items as KubeJson[]).filter((p) => !p.metadata.deletionTimestamp);
  const readyPods = (app: string): KubeJson[] => pods(app).filter((p) => hasCondition(p, 'Ready'));
  const serviceUrl = (name: string) => `http://${getJson('service', name, '-n', NS).spec.clusterIP as string}:80`;

  beforeAll(async () => {
    const images = await buildImagesAsync();
    cluster = await startRealCluster({ binDir: inject('k8sBinDir'), nodeDir: inject('nodeDir') });
    await cluster.importImage(images.kueuer.archive);
    await cluster.importImage(images.httpbin.archive);
    httpbinImage = images.httpbin.ref;
    // The broker on the bridge address: pods reach it there, and it advertises that address to them.
    // docs/async.md: with more than one responder replica (the chart runs 2), asynchronous requests need the shared
    // Redis store, named in the backend Secret; any replica then answers any poll.
    const redisUrl = new URL(inject('redisUrl'));
    redis = await forwardTcp(cluster.bridgeGateway, { host: redisUrl.hostname, port: Number(redisUrl.port) });
    kafka = startKafkaOnBridge(cluster, KAFKA_PORT, 'node-real', { KUEUER_ASYNC_STORE: `redis://${redis.host}:${redis.port}` });
    // README, "Helm", with a broker Secret of one's own (broker.type ""): the namespace and the Secret first.
    await helmInstallOnKafka(cluster, kafka, inject('helmBin'), images.kueuer.ref);

    ok(cluster.controlPlane.apply(`apiVersion: v1\nkind: Namespace\nmetadata: {name: ${NS}, labels: {kueuer.io/injection: enabled}}\n`), NS);
    kafka.createBackendSecret(NS);
    ok(cluster.controlPlane.apply(httpbinDeployment(NS, 'web', httpbinImage, { replicas: 2, annotations: { 'kueuer.io/autoscale': 'false' } })), 'web');
    await waitFor(
      '2 ready pods of web',
      120_000,
      () => readyPods('web').length === 2,
      () => kubectl('get', 'pods', '-A', '-o', 'wide').stdout,
    );
  }, 30 * 60_000);

  afterAll(async () => {
    kafka?.stop();
    await redis?.close();
    await cluster?.stop();
  }, 3 * 60_000);

  it('answers through the ClusterIP from the app, each request with its own answer, over Kafka', async () => {
    for (const p of pods('web')) {
      const status = JSON.parse(p.metadata.annotations['kueuer.io/status'] as string) as { queue?: string };
      expect(status.queue).toBe(`${NS}.web`);
    }
    const base = serviceUrl('web');
    const answers = await load({ count: 60, concurrency: 6, url: (i) => `${base}/get?i=${i}` });
    // summarize counts an answer only when it is a 200 echoing its own request's i.
    expect(summarize(answers)).toMatchObject({ ok: 60, lost: 0 });
    for (const a of answers) expect(a.headers['x-kueuer-request-id']).toMatch(/./);
  }, 120_000);

  it('loses no request while an app pod is deleted (the consumer group rebalances)', async () => {
    const base = serviceUrl('web');
    const victim = pods('web')[0]!.metadata.name as string;
    let deleted: Promise<unknown> | undefined;
    const answers = await load({
      count: 300,
      concurrency: 10,
      url: (i) => `${base}/delay/0.05?i=${i}`,
      onAnswer: (n) => {
        if (n === 50)
          deleted = runTool(
            join(cluster.controlPlane.binDir, 'kubectl'),
            ['-n', NS, 'delete', 'pod', victim, '--wait=false'],
            userEnv(cluster.controlPlane),
            60_000,
          );
      },
    });
    const removed = (await deleted) as { code: number; output: string } | undefined;
    expect(removed?.code, removed?.output).toBe(0);
    const s = summarize(answers);
    expect(s.failures).toEqual({});
    expect(s.lost).toBe(0);
    await waitFor('web back to 2 ready pods', 120_000, () => readyPods('web').length === 2);
    console.log(`kafka: 300 requests across an app pod deletion, 0 lost; slowest ${s.maxMs} ms`);
  }, 240_000);

  it('scales a Deployment up on Kafka lag through the generated HPA, and every new pod consumes', async () => {
    ok(
      cluster.controlPlane.apply(
        httpbinDeployment(NS, 'worker', httpbinImage, {
          replicas: 1,
          annotations: { 'kueuer.io/min-replicas': '1', 'kueuer.io/max-replicas': '3', 'kueuer.io/target-backlog': '2' },
        }),
      ),
      'worker',
    );
    await waitFor('1 ready pod of worker', 120_000, () => readyPods('worker').length === 1);
    await waitFor('the HPA kueuer-deploy-worker', 30_000, () => cluster.controlPlane.tryGetJson('hpa', 'kueuer-deploy-worker', '-n', NS));
    const url = serviceUrl('worker');
    const t0 = Date.now();
    let scaledAt = 0;
    const watching = waitFor(
      'worker to reach 3 ready replicas',
      120_000,
      () => readyPods('worker').length === 3,
      () => kubectl('describe', 'hpa', 'kueuer-deploy-worker', '-n', NS).stdout,
    ).then(() => (scaledAt = Date.now()));
    // 30 requests of 1 s, one at a time per pod: the request topic's lag is ~29 for one pod (6 partitions, so 3 pods share them).
    const answers = await load({ count: 30, concurrency: 30, url: (i) => `${url}/delay/1?i=${i}` });
    await watching;
    expect(summarize(answers)).toMatchObject({ ok: 30, lost: 0 });
    // Every pod took requests: each one's kueuer_sidecar_requests_total.
    const perPod: number[] = [];
    for (const p of readyPods('worker')) {
      const metrics = await request(`http://${p.status.podIP as string}:9091/metrics`);
      perPod.push([...metrics.body.toString().matchAll(/^kueuer_sidecar_requests_total\{[^}]*\} (\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0));
    }
    console.log(`kafka: worker at 3 ready ${((scaledAt - t0) / 1000).toFixed(1)} s after the first of 30 requests; answered per pod ${JSON.stringify(perPod)}`);
    expect(perPod.filter((n) => n > 0)).toHaveLength(3);
  }, 300_000);

  it("answers a Service with kueuer.io/async always: 202 through the ClusterIP, and the poll returns the app's answer from a pod", async () => {
    ok(kubectl('annotate', 'service', 'web', '-n', NS, 'kueuer.io/async=always', '--overwrite'), 'annotate web');
    const base = serviceUrl('web');
    // The responders follow the Service's annotations through their watch: synchronous answers until then.
    let accepted = await request(`${base}/get?i=async`, { timeoutMs: 10_000 });
    for (const until = Date.now() + 60_000; accepted.status !== 202 && Date.now() < until;) {
      await sleep(500);
      accepted = await request(`${base}/get?i=async`, { timeoutMs: 10_000 });
    }
    expect(accepted.status, 'a 202 from web within 60 s of kueuer.io/async=always').toBe(202);
    const location = accepted.headers.location as string;
    expect(location).toMatch(/^\/\.kueuer\/requests\/[A-Za-z0-9_-]+/);
    expect(accepted.headers['retry-after']).toMatch(/^\d+$/);
    // A long-poll through the same ClusterIP: kube-proxy may pick either responder replica; the Redis store serves both.
    const done = await request(`${base}${location}${location.includes('?') ? '&' : '?'}wait=30s`, { timeoutMs: 45_000 });
    const logs = () =>
      [
        kubectl('logs', '-n', 'kueuer-system', '-l', 'app.kubernetes.io/component=responder', '--tail=40', '--prefix').stdout,
        kubectl('logs', '-n', NS, '-l', 'app=web', '-c', 'kueuer-sidecar', '--tail=20', '--prefix').stdout,
      ].join('\n');
    expect(done.status, `${done.body.toString()}\n${done.status === 200 ? '' : logs()}`).toBe(200);
    expect(JSON.parse(done.body.toString()).args).toEqual({ i: ['async'] });
    const { id } = JSON.parse(accepted.body.toString()) as { id: string };
    expect(location).toContain(id);
    expect(done.headers['x-kueuer-request-id']).toBe(id);
    ok(kubectl('annotate', 'service', 'web', '-n', NS, 'kueuer.io/async-'), 'remove the annotation');
  }, 180_000);
});
