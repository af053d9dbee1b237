/**
 * Issue 21 on the real node: Kueuer installed as README says
 * (test/helpers/real-install.ts: the shipped base in a kustomization of one's
 * own, scripts/install.sh), with the 3-node RabbitMQ cluster of
 * scripts/dev/rabbitmq-cluster.sh (the global setup's, shared with
 * test/faults/replicated-rabbitmq.test.ts) as its broker. Pods reach it as a
 * Kubernetes Service would give it: one address, HAProxy's, through a
 * forwarder on the node bridge (the cluster listens on loopback only); the
 * autoscaler reads the three nodes' management APIs the same way.
 *
 * The app is a delay app (100 ms a request) in three replicas that echoes
 * its request's `i` and logs every call with its x-kueuer-redelivered flag, so
 * every run of a request is counted. Clients send a steady load to the
 * Service's ClusterIP through kube-proxy; once a third is answered, the node
 * leading the request queue (a quorum queue) is SIGKILLed. Every request must
 * get its own answer and no request may reach the app twice unflagged; the
 * slowest answer and the longest gap between answers after the kill (the
 * stall) are printed. The killed node is revived before the file ends, so the
 * files after it find the whole cluster.
 *
 * Then the same on Kafka: three KRaft brokers of scripts/dev/kafka-cluster.sh of
 * this file's own, on the node bridge's address (Kafka clients connect to the
 * addresses the brokers advertise, so a forwarder will not do, and the
 * suite's shared cluster advertises loopback); Kueuer's broker Secret is
 * switched to them and its Deployments restarted, the app runs in a namespace
 * of its own, and the broker leading most of the request topic's partitions
 * is SIGKILLed once a third is answered.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { hasCondition, mustSucceed, type KubeJson } from '../helpers/control-plane.js';
import { buildImagesAsync } from '../helpers/images.js';
import { startRealCluster, type RealCluster } from '../helpers/node.js';
import { kafkaClient, partitionLeaders, waitForBrokers } from '../helpers/kafka.js';
import { clusterCommand, holdClusterFaults, leaderNodeOf, managementOf } from '../helpers/rabbitmq-cluster.js';
import { installKueuer, rollout, type KueuerInstall } from '../helpers/real-install.js';
import { requestTopic } from '../../shared/transport/kafka/config.js';
import { sleep, waitFor } from './fixtures.js';
import { load, summarize, type LoadSummary } from './load.js';

const root = join(import.meta.dirname, '..', '..');
const NS = 'replicated';
const KAFKA_NS = 'replicated-kafka';
const APP = 'web';
const REPLICAS = 3;
/** Requests handed to one pod at once (kueuer.io/concurrency): 12 in flight across the three. */
const CONCURRENCY = 4;
const N = Number(process.env.KUEUER_REPLICATED_NODE_N ?? 600);
const APP_MS = 100;

/** This file's own three Kafka brokers, on the bridge: client ports 29401-29403 (controllers 29411-29413), clear of the suite's. */
const kafkaCluster = (bridge: string, ...args: string[]): Promise<{ stdout: string }> =>
  promisify(execFile)('bash', [join(root, 'scripts', 'dev', 'kafka-cluster.sh'), ...args], {
    encoding: 'utf8',
    env: {
      ...process.env,
      KUEUER_KAFKA_CLUSTER_PORT: '29401',
      KUEUER_KAFKA_CLUSTER_HOST: bridge,
      KUEUER_KAFKA_CLUSTER_DIR: join(root, '.cache', 'kafka-cluster-node'),
    },
  });

/**
 * The delay app (CommonJS for `node -e`, in the scenario apps' Node image): waits APP_MS, answers
 * `{"args":{"i":["<i>"]}}` as go-httpbin would (test/node/load.ts matches answers to requests by it),
 * and logs each call: its path and i, its x-kueuer-redelivered header and the time.
 */
const delayApp = `
const http = require('node:http');
http.createServer((req, res) => {
  const url = new URL(req.url, 'http://app');
  const i = url.searchParams.get('i');
  if (i !== null) console.log(JSON.stringify({ path: url.pathname, i, redelivered: req.headers['x-kueuer-redelivered'] ?? null, at: Date.now() }));
  setTimeout(() => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ args: { i: [i] } }));
  }, ${APP_MS});
}).listen(8080);
process.on('SIGTERM', () => process.exit(0));
`;

const appManifests = (namespace: string, image: string) => `
apiVersion: v1
kind: Namespace
metadata: {name: ${namespace}, labels: {kueuer.io/injection: enabled}}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: ${APP}
  namespace: ${namespace}
  annotations: {kueuer.io/autoscale: "false"}
spec:
  replicas: ${REPLICAS}
  selector: {matchLabels: {app: ${APP}}}
  template:
    metadata:
      labels: {app: ${APP}, kueuer.io/inject: "true"}
      annotations: {kueuer.io/concurrency: "${CONCURRENCY}"}
    spec:
      containers:
        - name: app
          image: ${image}
          args: ${JSON.stringify(['-e', delayApp])}
          ports: [{name: http, containerPort: 8080}]
          readinessProbe: {tcpSocket: {port: http}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata:
  name: ${APP}
  namespace: ${namespace}
  labels: {kueuer.io/inject: "true"}
spec:
  selector: {app: ${APP}}
  ports: [{name: http, port: 80, targetPort: http}]
`;

interface Outcome {
  summary: LoadSummary;
  /** Requests the app got at least once, and its calls in all. */
  requestsRun: number;
  appCalls: number;
  /** Requests the app ran again without x-kueuer-redelivered. */
  unflaggedReruns: string[];
  /** The longest gap between answers from the fault on (the first gap counts from the fault). */
  stallMs: number;
  report: string;
}

describe('Kueuer in real pods on replicated brokers', () => {
  let cluster: RealCluster;
  let install: KueuerInstall | undefined;
  let appImage = '';
  /** The RabbitMQ node the test killed and has not revived yet. */
  let killed = 0;
  /** Releases the shared RabbitMQ cluster to the other file that kills its nodes. */
  let releaseFaults: (() => void) | undefined;
  let kafkaStarted: Promise<{ stdout: string }> | undefined;
  const { lb, nodes } = inject('amqpCluster');
  const getJson = (...args: string[]): KubeJson => cluster.controlPlane.getJson(...args);
  const pods = (namespace: string): KubeJson[] =>
    (getJson('pods', '-n', namespace, '-l', `app=${APP}`).items as KubeJson[]).filter((p) => !p.metadata.deletionTimestamp);

  /** The delay app in `namespace` (with its broker Secret), ready in REPLICAS pods; resolves its Service's base URL. */
  async function deployApp(namespace: string, secret: () => void): Promise<string> {
    mustSucceed(cluster.controlPlane.apply(appManifests(namespace, appImage).split('---')[0]!), namespace);
    secret();
    // A webhook just restarted (the Kafka case) is called once its Service routes to it again: until then admission fails.
    let refused = '';
    await waitFor(
      `${namespace}/${APP} admitted`,
      60_000,
      () => {
        const applied = cluster.controlPlane.apply(appManifests(namespace, appImage));
        refused = applied.stderr;
        if (applied.code !== 0 && !refused.includes('failed calling webhook')) mustSucceed(applied, `${namespace}/${APP}`);
        return applied.code === 0;
      },
      () => refused,
    );
    await waitFor(
      `${REPLICAS} ready pods of ${namespace}/${APP}`,
      180_000,
      () => pods(namespace).filter((p) => hasCondition(p, 'Ready')).length === REPLICAS,
      () => cluster.controlPlane.kubectl(['get', 'pods', '-A', '-o', 'wide']).stdout,
    );
    const ip = getJson('service', APP, '-n', namespace).spec.clusterIP as string;
    cluster.assertRoutedViaBridge(ip);
    const base = `http://${ip}:80`;
    // The Service's rewrite is routed and the sidecars consume: a few answers before the measured load.
    const first = await load({ count: 12, concurrency: 4, url: (i) => `${base}/warm?i=${i}` });
    expect(summarize(first)).toMatchObject({ lost: 0 });
    return base;
  }

  /** N requests, 16 at a time, to the app in `namespace`; `fault` starts once N/3 are answered. */
  async function underLoad(namespace: string, base: string, fault: () => Promise<unknown>): Promise<Outcome> {
    const answeredAt: number[] = [];
    let faultAt = 0;
    let faultDone: Promise<unknown> | undefined;
    const answers = await load({
      count: N,
      concurrency: 16,
      url: (i) => `${base}/work?i=${i}`,
      onAnswer: (n) => {
        answeredAt.push(Date.now());
        if (n === Math.ceil(N / 3)) {
          faultAt = Date.now();
          faultDone = fault();
        }
      },
    });
    await faultDone;
    // Every call of the measured load the app got, from each pod's log, in time order per request.
    const calls = new Map<string, Array<{ redelivered: string | null; at: number }>>();
    for (const p of pods(namespace)) {
      const logs = cluster.controlPlane.kubectl(['logs', '-n', namespace, p.metadata.name as string, '-c', 'app']).stdout;
      for (const line of logs.split('\n').filter((l) => l.startsWith('{'))) {
        const call = JSON.parse(line) as { path: string; i: string; redelivered: string | null; at: number };
        if (call.path === '/work') calls.set(call.i, [...(calls.get(call.i) ?? []), call]);
      }
    }
    for (const c of calls.values()) c.sort((a, b) => a.at - b.at);
    const unflaggedReruns = [...calls.entries()].filter(([, c]) => c.slice(1).some((call) => call.redelivered !== 'true')).map(([i]) => i);
    const appCalls = [...calls.values()].reduce((n, c) => n + c.length, 0);
    const after = answeredAt.filter((t) => t >= faultAt);
    let stallMs = after.length ? after[0]! - faultAt : 0;
    for (let k = 1; k < after.length; k++) stallMs = Math.max(stallMs, after[k]! - after[k - 1]!);
    const summary = summarize(answers);
    // Kueuer's warnings and errors meanwhile (pino's level ≥ 40), counted by message: what the failover cost it.
    const warned: Record<string, number> = {};
    const responders = (getJson('pods', '-n', 'kueuer-system', '-l', 'app.kubernetes.io/component=responder').items as KubeJson[]).map((p) => [
      'kueuer-system',
      p.metadata.name as string,
      'responder',
    ]);
    for (const [ns, pod, container] of [...pods(namespace).map((p) => [namespace, p.metadata.name as string, 'kueuer-sidecar']), ...responders]) {
      for (const line of cluster.controlPlane.kubectl(['logs', '-n', ns!, pod!, '-c', container!]).stdout.split('\n')) {
        const entry = /^\{/.test(line) ? (JSON.parse(line) as { level?: number; msg?: string }) : {};
        if ((entry.level ?? 0) >= 40)
          warned[`${container}: ${String(entry.msg).slice(0, 80)}`] = (warned[`${container}: ${String(entry.msg).slice(0, 80)}`] ?? 0) + 1;
      }
    }
    const report =
      `sent ${summary.sent}, answered exactly ${summary.ok}, lost or wrong ${summary.lost} ${JSON.stringify(summary.failures)}; ` +
      `app calls ${appCalls} for ${calls.size} requests (${appCalls - calls.size} reruns, unflagged ${unflaggedReruns.length}); ` +
      `slowest answer ${summary.maxMs} ms, longest gap after the kill ${stallMs} ms` +
      answers
        .filter((a) => a.error || a.status !== 200)
        .slice(0, 3)
        .map((a) => `; request ${a.i}: ${a.error ?? a.status} after ${a.ms} ms ${a.body.toString().slice(0, 200)}`)
        .join('') +
      `; warnings ${JSON.stringify(warned)}`;
    return { summary, requestsRun: calls.size, appCalls, unflaggedReruns, stallMs, report };
  }

  const expectNothingLost = (o: Outcome) => {
    expect(o.summary.failures).toEqual({});
    expect(o.summary).toMatchObject({ sent: N, ok: N, lost: 0 });
    expect(o.requestsRun).toBe(N);
    expect(o.unflaggedReruns).toEqual([]);
  };

  beforeAll(async () => {
    if (!lb) throw new Error('the global setup started no RabbitMQ cluster for this run (is this file in CLUSTER_TESTS?)');
    const images = await buildImagesAsync();
    appImage = images.scenarioApps.ref;
    cluster = await startRealCluster({ binDir: inject('k8sBinDir'), nodeDir: inject('nodeDir') });
    // Kafka's three JVMs start meanwhile (the bridge address exists now); the Kafka case waits for them.
    kafkaStarted = kafkaCluster(cluster.bridgeGateway, 'start');
    kafkaStarted.catch(() => undefined);
    await cluster.importImage(images.kueuer.archive);
    await cluster.importImage(images.scenarioApps.archive);
    // docs/rabbitmq.md: a 5 s publish timeout on a cluster rides out a quorum queue's leader election.
    install = await installKueuer(cluster, {
      image: images.kueuer.ref,
      amqpUrl: lb,
      management: managementOf(nodes),
      config: { KUEUER_PUBLISH_TIMEOUT: '5s' },
    });
  }, 20 * 60_000);

  afterAll(async () => {
    // The next files share the RabbitMQ cluster: bring the killed node back (with its data; it rejoins).
    if (killed) await clusterCommand('revive', String(killed));
    releaseFaults?.();
    if (kafkaStarted) await kafkaCluster(cluster.bridgeGateway, 'stop');
    await install?.close();
    await cluster?.stop();
  }, 3 * 60_000);

  it('RabbitMQ: loses no request when the node leading the request queue is SIGKILLed under load, and reruns none unflagged', async () => {
    const base = await deployApp(NS, () => install!.createBackendSecret(NS));
    const queue = `${NS}.${APP}`;
    releaseFaults = await holdClusterFaults();
    const leader = await leaderNodeOf(queue, nodes);
    const outcome = await underLoad(NS, base, () => {
      killed = leader;
      return clusterCommand('kill', String(leader));
    });
    const newLeader = await leaderNodeOf(queue, nodes).catch((err: Error) => err.message);
    console.log(
      `replicated RabbitMQ on the real node: node ${leader} (leading ${queue}) SIGKILLed after ${Math.ceil(N / 3)} of ${N} answers; new leader ${newLeader}; ${outcome.report}`,
    );
    expectNothingLost(outcome);
    expect(newLeader).not.toBe(leader);

    await clusterCommand('revive', String(leader));
    killed = 0;
    releaseFaults();
    releaseFaults = undefined;
    // Whole again: requests still go through with the revived node back in the quorum.
    await sleep(500);
    const again = await load({ count: 12, concurrency: 4, url: (i) => `${base}/again?i=${i}` });
    expect(summarize(again)).toMatchObject({ lost: 0 });
  }, 300_000);

  it('Kafka: loses no request when the broker leading most request partitions is SIGKILLed under load, and reruns none unflagged', async () => {
    const brokers = (await kafkaStarted!).stdout.trim().split('\n').pop()!;
    const backend = `kafka://${brokers}`;
    await waitForBrokers(backend, 3, 120_000);
    // The user's move to Kafka: the broker Secret of kueuer-system and of the app's namespace, and Kueuer's Deployments restarted to read it.
    const secret = (namespace: string) =>
      mustSucceed(
        cluster.controlPlane.apply(
          `apiVersion: v1\nkind: Secret\nmetadata: {name: kueuer-backend, namespace: ${namespace}}\nstringData: {KUEUER_BACKEND: "${backend}"}\n`,
        ),
        `the Secret kueuer-backend in ${namespace}`,
      );
    mustSucceed(cluster.controlPlane.kubectl(['-n', 'kueuer-system', 'delete', 'secret', 'kueuer-backend']), 'the RabbitMQ Secret');
    secret('kueuer-system');
    // RabbitMQ's 5 s publish timeout goes too: Kafka's default (30 s) outlasts a dead leader's fencing (docs/kafka.md).
    mustSucceed(
      cluster.controlPlane.kubectl([
        ...['-n', 'kueuer-system', 'patch', 'configmap', 'kueuer-config', '--type=json'],
        ...['-p', '[{"op": "remove", "path": "/data/KUEUER_PUBLISH_TIMEOUT"}]'],
      ]),
      'kueuer-config',
    );
    mustSucceed(
      cluster.controlPlane.kubectl(['-n', 'kueuer-system', 'rollout', 'restart', 'deployment/kueuer-responder', 'deployment/kueuer-webhook']),
      'restart',
    );
    await Promise.all([
      rollout(cluster.controlPlane, 'kueuer-system', 'kueuer-responder', 180),
      rollout(cluster.controlPlane, 'kueuer-system', 'kueuer-webhook', 180),
    ]);
    const base = await deployApp(KAFKA_NS, () => secret(KAFKA_NS));

    const kafka = kafkaClient(backend);
    const topic = requestTopic(`${KAFKA_NS}.${APP}`);
    const leaders = (await partitionLeaders(kafka, [topic])).get(topic)!;
    const count = new Map<number, number>();
    for (const l of leaders) count.set(l, (count.get(l) ?? 0) + 1);
    const victim = [...count].sort((a, b) => b[1] - a[1])[0]![0];
    const outcome = await underLoad(KAFKA_NS, base, () => kafkaCluster(cluster.bridgeGateway, 'kill', String(victim)));
    const after = (await partitionLeaders(kafka, [topic]).catch(() => new Map<string, number[]>())).get(topic);
    console.log(
      `replicated Kafka on the real node: broker ${victim} (leading ${count.get(victim)} of ${leaders.length} partitions of ${topic}) SIGKILLed after ${Math.ceil(N / 3)} of ${N} answers; ` +
        `leaders before ${JSON.stringify(leaders)}, after ${JSON.stringify(after)}; ${outcome.report}`,
    );
    expectNothingLost(outcome);
    expect(after).not.toContain(victim);
  }, 400_000);
});
