/**
 * Autoscaling end to end: the real `kueuer webhook` process reconciles HPAs
 * for annotated Deployments in a real kube-apiserver, serves
 * external.metrics.k8s.io through the real aggregation layer (APIService,
 * front-proxy client certificate, SubjectAccessReview), reads the backlog
 * from a real RabbitMQ's management API, and the real HPA controller in
 * kube-controller-manager (5 s sync) scales the Deployment.
 */
import { readFileSync } from 'node:fs';
import { get as httpsGet } from 'node:https';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { dumpYaml, loadAllYaml } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { encodeRequest } from '../../shared/envelope.js';
import { newRequestId } from '../../shared/request-id.js';
import type { Consumer, Transport } from '../../shared/transport/transport.js';
import { startControlPlane, type ControlPlane } from '../helpers/control-plane.js';
import { freePort } from '../helpers/net.js';
import { msgIs, spawnKueuer, type KueuerProcess } from '../helpers/processes.js';
import { newTransport, waitFor } from '../helpers/stack.js';
import { generateCerts } from '../helpers/webhook.js';

const amqpUrl = inject('amqpUrl');
const managementUrl = `http://127.0.0.1:${Number(new URL(amqpUrl).port) + 3}`;
const root = join(import.meta.dirname, '..', '..');
type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** The aggregator routes to endpoint IPs, which may not be loopback: the webhook listens on this machine's first external IPv4. */
function hostAddress(): string {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  throw new Error('no non-loopback IPv4 address: the aggregation layer cannot reach the metrics API (EndpointSlices refuse loopback)');
}

describe('generated HPAs driven by queue depth', () => {
  let cp: ControlPlane;
  let webhook: KueuerProcess;
  let broker: Transport;
  let metricsBase = '';
  const consumers: Consumer[] = [];

  const kubectl = (...args: string[]) => cp.kubectl(args);
  const apply = (yaml: string) => cp.apply(yaml);
  const getJson = (...args: string[]): Json => cp.getJson(...args);
  const tryGet = (...args: string[]): Json | null => cp.tryGetJson(...args);
  const replicas = (name: string): number => getJson('deployment', name, '-n', 'shop').spec.replicas as number;
  const events = (name: string): Json[] =>
    (getJson('events', '-n', 'shop', '--field-selector', `involvedObject.name=${name}`).items as Json[]).filter((e) => e.source?.component === 'kueuer');

  const deployment = (name: string, annotations: Record<string, string>, template: Record<string, string> = { 'kueuer.io/inject': 'true' }, count = 1) => `
apiVersion: apps/v1
kind: Deployment
metadata: {name: ${name}, namespace: shop, annotations: ${JSON.stringify(annotations)}}
spec:
  replicas: ${count}
  selector: {matchLabels: {app: ${name}}}
  template:
    metadata: {labels: {app: ${name}}, annotations: ${JSON.stringify(template)}}
    spec: {containers: [{name: app, image: "example.com/${name}:1"}]}
`;

  async function backlog(queue: string, n: number): Promise<void> {
    for (let i = 0; i < n; i++) {
      const message = encodeRequest({
        id: newRequestId(),
        queue,
        replyTo: 'nobody',
        deadline: Date.now() + 600_000,
        enqueuedAt: Date.now(),
        method: 'GET',
        path: '/',
        headers: [],
        body: Buffer.alloc(0),
      });
      await broker.publishRequest(queue, message, { timeoutMs: 5000 });
    }
  }

  beforeAll(async () => {
    cp = await startControlPlane(inject('k8sBinDir'));
    broker = await newTransport('amqp');
    const certs = generateCerts(undefined, ['kueuer-webhook.kueuer-system.svc']);
    const address = hostAddress();
    const port = await freePort();
    // The webhook runs as its ServiceAccount with the RBAC we ship, so these tests also prove those verbs suffice.
    for (const f of ['manifests/base/namespace.yaml', 'manifests/base/rbac.yaml', 'manifests/base/autoscaling/rbac.yaml']) {
      const r = cp.kubectl(['apply', '-f', join(root, f)]);
      expect(r.stderr).toBe('');
    }
    const asWebhook = cp.kubeconfigAs('kueuer-system', 'kueuer-webhook');
    webhook = spawnKueuer(
      [
        'webhook',
        '--listen',
        `${address}:${port}`,
        '--tls-cert',
        certs.cert,
        '--tls-key',
        certs.key,
        '--backend',
        amqpUrl,
        '--rabbitmq-management-url',
        managementUrl,
        '--autoscaling-poll-interval',
        '1s',
      ],
      { KUBECONFIG: asWebhook },
    );
    await webhook.waitForLog(msgIs('webhook ready'), 30_000);
    metricsBase = `https://${address}:${port}`;
    const [apiService] = loadAllYaml(readFileSync(join(root, 'manifests/base/autoscaling/external-metrics-apiservice.yaml'), 'utf8')) as Json[];
    apiService!.spec.caBundle = certs.ca.toString('base64');
    const setup = `
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {kueuer.io/injection: enabled}}
---
apiVersion: v1
kind: Service
metadata: {name: kueuer-webhook, namespace: kueuer-system}
spec:
  ports: [{name: https, port: 443, targetPort: ${port}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: kueuer-webhook-1
  namespace: kueuer-system
  labels: {kubernetes.io/service-name: kueuer-webhook}
addressType: IPv4
endpoints:
- addresses: ["${address}"]
  conditions: {ready: true}
ports: [{name: https, port: ${port}, protocol: TCP}]
---
${dumpYaml(apiService)}`;
    const r = apply(setup);
    expect(r.stderr).toBe('');
    await waitFor(
      () => tryGet('apiservice', 'v1beta1.external.metrics.k8s.io')?.status?.conditions?.find((c: Json) => c.type === 'Available')?.status === 'True',
      60_000,
      'the APIService to be available',
    );
  }, 5 * 60_000);

  afterAll(async () => {
    if (process.env.KUEUER_TEST_DEBUG)
      console.log(
        webhook?.logs
          .filter((l) => Number(l.level) >= 40)
          .map((l) => JSON.stringify(l))
          .join('\n'),
        webhook?.stderr.join('\n'),
      );
    for (const c of consumers) await c.stop();
    await broker?.close();
    webhook?.child.kill('SIGKILL');
    await cp?.stop();
  }, 60_000);

  it('creates one HPA per annotated Deployment, owned by it, and records an Event', async () => {
    expect(apply(deployment('orders', { 'kueuer.io/max-replicas': '4', 'kueuer.io/target-backlog': '3' })).code).toBe(0);
    let hpa: Json | null = null;
    await waitFor(() => (hpa = tryGet('hpa', 'kueuer-deploy-orders', '-n', 'shop')) !== null, 20_000, 'the HPA');
    const uid = getJson('deployment', 'orders', '-n', 'shop').metadata.uid;
    expect(hpa!.metadata.labels).toMatchObject({ 'app.kubernetes.io/managed-by': 'kueuer', 'kueuer.io/queue': 'shop.orders' });
    expect(hpa!.metadata.ownerReferences).toEqual([
      { apiVersion: 'apps/v1', kind: 'Deployment', name: 'orders', uid, controller: true, blockOwnerDeletion: true },
    ]);
    expect(hpa!.spec).toMatchObject({
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'orders' },
      minReplicas: 1,
      maxReplicas: 4,
      metrics: [
        {
          type: 'External',
          external: {
            metric: { name: 'kueuer_queue_backlog', selector: { matchLabels: { queue: 'shop.orders' } } },
            target: { type: 'AverageValue', averageValue: '3' },
          },
        },
      ],
    });
    await waitFor(() => events('orders').some((e) => e.reason === 'KueuerAutoscalerCreated'), 10_000, 'the Created event');

    // An annotation change updates it; removing the inject annotation deletes it.
    expect(apply(deployment('orders', { 'kueuer.io/max-replicas': '6', 'kueuer.io/target-backlog': '3' })).code).toBe(0);
    await waitFor(() => tryGet('hpa', 'kueuer-deploy-orders', '-n', 'shop')?.spec.maxReplicas === 6, 20_000, 'max replicas 6');
    await waitFor(() => events('orders').some((e) => e.reason === 'KueuerAutoscalerUpdated'), 10_000, 'the Updated event');
    expect(apply(deployment('orders', {}, {})).code).toBe(0);
    await waitFor(() => tryGet('hpa', 'kueuer-deploy-orders', '-n', 'shop') === null, 20_000, 'the HPA to be deleted');
  });

  it('refuses bad annotations with an Event and leaves HPAs it did not create alone', async () => {
    expect(apply(deployment('typo', { 'kueuer.io/max-replicas': 'lots' })).code).toBe(0);
    await waitFor(
      () => events('typo').some((e) => e.reason === 'KueuerAutoscalerRefused' && e.type === 'Warning' && e.message.includes('kueuer.io/max-replicas')),
      20_000,
      'the refusal event',
    );
    expect(tryGet('hpa', 'kueuer-deploy-typo', '-n', 'shop')).toBeNull();

    const foreign = `
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: kueuer-deploy-mine, namespace: shop}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: mine}
  minReplicas: 2
  maxReplicas: 7
  metrics: [{type: Resource, resource: {name: cpu, target: {type: Utilization, averageUtilization: 50}}}]
`;
    expect(apply(foreign).code).toBe(0);
    expect(apply(deployment('mine', {})).code).toBe(0);
    await waitFor(
      () => events('mine').some((e) => e.reason === 'KueuerAutoscalerRefused' && e.message.includes('not managed by Kueuer')),
      20_000,
      'the conflict event',
    );
    const kept = getJson('hpa', 'kueuer-deploy-mine', '-n', 'shop');
    expect(kept.spec.maxReplicas).toBe(7);
    expect(kept.metadata.labels?.['app.kubernetes.io/managed-by']).toBeUndefined();
  });

  it('a backlog scales the Deployment up through the real HPA controller, and a drained queue scales it back', { timeout: 180_000 }, async () => {
    expect(
      apply(deployment('worker', { 'kueuer.io/max-replicas': '5', 'kueuer.io/target-backlog': '2', 'kueuer.io/scale-down-stabilization': '5s' })).code,
    ).toBe(0);
    await waitFor(() => tryGet('hpa', 'kueuer-deploy-worker', '-n', 'shop') !== null, 20_000, 'the HPA');
    const started = Date.now();
    await backlog('shop.worker', 10);
    await waitFor(() => replicas('worker') === 5, 60_000, 'the HPA to scale to 5 (10 queued / 2 per replica)');
    const decision = (Date.now() - started) / 1000;
    console.log(`[measure] backlog to scale-up decision: ${decision.toFixed(1)} s (HPA sync 5 s, depth poll from RabbitMQ's management API)`);
    // Once the HPA has seen 5 replicas, it reports 10 queued over 5 replicas.
    await waitFor(() => getJson('hpa', 'kueuer-deploy-worker', '-n', 'shop').status.currentReplicas === 5, 30_000, 'the HPA status at 5 replicas');
    const hpa = getJson('hpa', 'kueuer-deploy-worker', '-n', 'shop');
    expect(hpa.status.currentMetrics[0].external).toMatchObject({ metric: { name: 'kueuer_queue_backlog' }, current: { averageValue: '2' } });

    consumers.push(await broker.consume('shop.worker', { concurrency: 20 }, async () => undefined));
    await waitFor(() => replicas('worker') === 1, 90_000, 'scale back to 1 after stabilization');
    const metrics = await fetch(`${managementUrl}/api/queues/%2F/shop.worker`, {
      headers: { authorization: `Basic ${Buffer.from('guest:guest').toString('base64')}` },
    });
    expect(((await metrics.json()) as Json).messages).toBe(0);
  });

  it('with min 0: scales to 0 after the idle cooldown, and back to 1 when requests wait', { timeout: 120_000 }, async () => {
    expect(apply(deployment('nightly', { 'kueuer.io/min-replicas': '0', 'kueuer.io/idle-cooldown': '3s', 'kueuer.io/max-replicas': '3' })).code).toBe(0);
    await waitFor(() => tryGet('hpa', 'kueuer-deploy-nightly', '-n', 'shop') !== null, 20_000, 'the HPA');
    expect(getJson('hpa', 'kueuer-deploy-nightly', '-n', 'shop').spec.minReplicas).toBe(1); // the HPA does 1↔N
    await waitFor(() => replicas('nightly') === 0, 30_000, 'scale to 0 when idle');
    expect(events('nightly').some((e) => e.reason === 'KueuerScaledToZero')).toBe(true);
    await backlog('shop.nightly', 1);
    await waitFor(() => replicas('nightly') >= 1, 30_000, 'scale from 0 when a request waits');
    expect(events('nightly').some((e) => e.reason === 'KueuerScaledFromZero')).toBe(true);
  });

  it('deleting the workload deletes its HPA (owner reference, garbage collector)', async () => {
    expect(apply(deployment('shortlived', {})).code).toBe(0);
    await waitFor(() => tryGet('hpa', 'kueuer-deploy-shortlived', '-n', 'shop') !== null, 20_000, 'the HPA');
    expect(kubectl('delete', 'deployment', 'shortlived', '-n', 'shop').code).toBe(0);
    await waitFor(() => tryGet('hpa', 'kueuer-deploy-shortlived', '-n', 'shop') === null, 30_000, 'the HPA to be collected');
  });

  it('the metrics API refuses a caller that is not the aggregator', async () => {
    const status = getJson('apiservice', 'v1beta1.external.metrics.k8s.io').status;
    expect(status.conditions.find((c: Json) => c.type === 'Available').status).toBe('True');
    // Through the apiserver: the admin may read it.
    const r = kubectl('get', '--raw', '/apis/external.metrics.k8s.io/v1beta1/namespaces/shop/kueuer_queue_backlog?labelSelector=queue%3Dshop.worker');
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout).items[0]).toMatchObject({ metricName: 'kueuer_queue_backlog', metricLabels: { queue: 'shop.worker' } });
    // Another namespace's queue is not served.
    const other = kubectl('get', '--raw', '/apis/external.metrics.k8s.io/v1beta1/namespaces/default/kueuer_queue_backlog?labelSelector=queue%3Dshop.worker');
    expect(other.code).not.toBe(0);
    // Straight to the server, without the front proxy's client certificate: 401, whatever the headers claim.
    const direct = await new Promise<number>((resolve, reject) => {
      const req = httpsGet(
        `${metricsBase}/apis/external.metrics.k8s.io/v1beta1/namespaces/shop/kueuer_queue_backlog?labelSelector=queue%3Dshop.worker`,
        { rejectUnauthorized: false, headers: { 'x-remote-user': 'system:admin', 'x-remote-group': 'system:masters' } },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
    });
    expect(direct).toBe(401);
  });
});
