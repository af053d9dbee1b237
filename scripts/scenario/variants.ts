/**
 * The three setups of a scenario, each on a fresh real node
 * (test/helpers/node.ts), for the same app and the same manifests:
 *
 * (a) without Kueuer: the app's Deployment and Service and
 *     `kubectl autoscale deployment … --cpu-percent=50 --min=1 --max=30`,
 *     what users run today;
 * (b) Kueuer installed as README says (test/helpers/real-install.ts:
 *     scripts/install.sh of a kustomization of manifests/base) on RabbitMQ,
 *     the same manifests opted in (namespace label, broker Secret, pod
 *     template and Service labels) with the generated HPA;
 * (c) Kueuer with Helm on Kafka (a broker of its own on the node bridge, as
 *     test/node/kafka-node.test.ts), likewise.
 *
 * metrics-server runs in all three (its CPU readings are recorded in each);
 * only (a)'s HPA reads it. It runs beside the node as a process, behind the
 * APIService v1beta1.metrics.k8s.io (metrics-server.ts).
 */
import { hasCondition, mustSucceed, type KubeJson } from '../../test/helpers/control-plane.js';
import type { ImagesJson } from '../../test/helpers/images.js';
import { helmInstallOnKafka, startKafkaOnBridge } from '../../test/helpers/kafka-install.js';
import { startRealCluster, type RealCluster } from '../../test/helpers/node.js';
import { installKueuer } from '../../test/helpers/real-install.js';
import { startMetricsServer } from './metrics-server.js';

export type VariantId = 'a' | 'b' | 'c';

export const VARIANT_TITLES: Record<VariantId, string> = {
  a: '(a) without Kueuer: CPU HPA',
  b: '(b) Kueuer on RabbitMQ',
  c: '(c) Kueuer on Kafka',
};

export interface Tools {
  binDir: string;
  nodeDir: string;
  helmBin: string;
  /** The suite's RabbitMQ (amqp://user:pass@127.0.0.1:PORT), for (b). */
  amqpUrl: string;
  metricsServer: string;
}

export interface AppSetup {
  app: string;
  maxReplicas: number;
}

export interface VariantContext {
  cluster: RealCluster;
  namespace: string;
  /** http://<ClusterIP>:80/ */
  url: string;
  hpa: string;
  /** `<namespace>.<queue>` for Kueuer's backlog metric; undefined in (a). */
  queue?: string;
  /** What happened while setting up that a reader of the numbers should know. */
  notes: string[];
}

const NS = 'shop';
/** A Kafka broker of the scenario's own: not the suite's 29092, nor kafka-node.test.ts's 29392. */
const KAFKA_PORT = '29492';

/**
 * The node has 2 vCPUs: with the sidecar's default 50m request only ~24 pods (20m + 50m each, beside Kueuer's
 * 300m) fit; 30m is the most at which 30 fit. (10m, tried first, starved the sidecars of CPU weight against their
 * busy apps on the loaded machine: their 1 s liveness probe failed and the kubelet restarted them.)
 */
export const SIDECAR_CPU_REQUEST = '30m';

/** The app's Deployment and Service, written as a user would; `kueuer` adds the opt-in labels and the scaling annotations. */
export function appManifests(namespace: string, setup: AppSetup, image: string, kueuer: boolean): string {
  const optIn = kueuer ? ', kueuer.io/inject: "true"' : '';
  const annotations = kueuer
    ? JSON.stringify({ 'kueuer.io/min-replicas': '1', 'kueuer.io/max-replicas': String(setup.maxReplicas), 'kueuer.io/target-backlog': '1' })
    : '{}';
  const podAnnotations = kueuer ? `\n      annotations: {kueuer.io/sidecar-cpu-request: "${SIDECAR_CPU_REQUEST}"}` : '';
  return `apiVersion: apps/v1
kind: Deployment
metadata:
  name: ${setup.app}
  namespace: ${namespace}
  annotations: ${annotations}
spec:
  replicas: 1
  selector: {matchLabels: {app: ${setup.app}}}
  template:
    metadata:
      labels: {app: ${setup.app}${optIn}}${podAnnotations}
    spec:
      containers:
        - name: app
          image: ${image}
          args: [/app/${setup.app}.mjs]
          ports: [{name: http, containerPort: 8080}]
          resources:
            requests: {cpu: 20m, memory: 64Mi}
            limits: {cpu: 20m, memory: 128Mi}
          readinessProbe: {tcpSocket: {port: http}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata:
  name: ${setup.app}
  namespace: ${namespace}
  labels: {${kueuer ? 'kueuer.io/inject: "true"' : ''}}
spec:
  selector: {app: ${setup.app}}
  ports: [{name: http, port: 80, targetPort: http}]
`;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(what: string, timeoutMs: number, check: () => T | null | undefined | false, state?: () => string): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = check();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${state ? `\n${state()}` : ''}`);
    await sleep(500);
  }
}

/**
 * Runs `fn` on a fresh node set up as `variant` with the app deployed and its HPA reading a metric;
 * stops everything after, whatever happens.
 */
export async function withVariant<T>(
  tools: Tools,
  images: ImagesJson,
  variant: VariantId,
  setup: AppSetup,
  fn: (ctx: VariantContext) => Promise<T>,
): Promise<T> {
  const cleanups: Array<() => Promise<void> | void> = [];
  const notes: string[] = [];
  const step = (what: string) => console.error(`scenario ${setup.app} (${variant}): ${what}`);
  step('starting a fresh node');
  const cluster = await startRealCluster({ binDir: tools.binDir, nodeDir: tools.nodeDir });
  cleanups.push(() => cluster.stop());
  const cp = cluster.controlPlane;
  const kubectl = (...args: string[]) => cp.kubectl(args);
  try {
    await cluster.importImage(images.scenarioApps.archive);
    if (variant !== 'a') await cluster.importImage(images.kueuer.archive);
    const metrics = await startMetricsServer(cluster, tools.metricsServer);
    cleanups.unshift(() => metrics.stop());

    const kueuer = variant !== 'a';
    step(kueuer ? 'installing Kueuer' : 'metrics-server up; no Kueuer');
    let createSecret: (ns: string) => void = () => undefined;
    if (variant === 'b') {
      const install = await installKueuer(cluster, { image: images.kueuer.ref, amqpUrl: tools.amqpUrl, config: { KUEUER_AUTOSCALING_POLL_INTERVAL: '1s' } });
      cleanups.unshift(() => install.close());
      createSecret = (ns) => install.createBackendSecret(ns);
    } else if (variant === 'c') {
      // As many partitions as replicas: the request topic takes that many consumers (the default 6 would cap max-replicas at 6).
      const kafka = startKafkaOnBridge(cluster, KAFKA_PORT, 'scenario', { KUEUER_KAFKA_PARTITIONS: String(setup.maxReplicas) });
      cleanups.unshift(() => kafka.stop());
      createSecret = (ns) => kafka.createBackendSecret(ns);
      await helmInstallOnKafka(cluster, kafka, tools.helmBin, images.kueuer.ref);
      notes.push(`Kafka: KUEUER_KAFKA_PARTITIONS=${setup.maxReplicas} in the broker Secret (the default 6 partitions would cap max-replicas at 6)`);
    }

    mustSucceed(
      cp.apply(`apiVersion: v1\nkind: Namespace\nmetadata: {name: ${NS}${kueuer ? ', labels: {kueuer.io/injection: enabled}' : ''}}\n`),
      `namespace ${NS}`,
    );
    if (kueuer) {
      createSecret(NS);
      notes.push(`pod template: kueuer.io/sidecar-cpu-request ${SIDECAR_CPU_REQUEST} (30 pods must fit the 2-vCPU node)`);
    }
    mustSucceed(cp.apply(appManifests(NS, setup, images.scenarioApps.ref, kueuer)), setup.app);
    const hpa = kueuer ? `kueuer-deploy-${setup.app}` : setup.app;
    if (!kueuer)
      mustSucceed(kubectl('-n', NS, 'autoscale', 'deployment', setup.app, '--cpu-percent=50', '--min=1', `--max=${setup.maxReplicas}`), 'kubectl autoscale');
    const podState = () => kubectl('get', 'pods', '-A', '-o', 'wide').stdout;
    await waitFor(
      `1 ready pod of ${NS}/${setup.app}`,
      180_000,
      () => (cp.getJson('pods', '-n', NS, '-l', `app=${setup.app}`).items as KubeJson[]).some((p) => hasCondition(p, 'Ready')),
      podState,
    );
    // The HPA reads its metric before the load starts (metrics-server's first scrape, or Kueuer's backlog).
    const metricRead = await waitFor(
      `the HPA ${hpa} reading its metric`,
      120_000,
      () => {
        const h = cp.tryGetJson('hpa', hpa, '-n', NS) as { status?: { currentMetrics?: unknown[] } } | null;
        return h?.status?.currentMetrics?.length ? h.status.currentMetrics : null;
      },
      () => kubectl('describe', 'hpa', hpa, '-n', NS).stdout,
    ).catch((err: Error) => {
      notes.push(`before the load the HPA had read no metric yet: ${err.message.split('\n')[0]}`);
      return null;
    });
    if (metricRead) notes.push(`HPA ${hpa} metric before the load: ${JSON.stringify(metricRead)}`);
    // Ready is not yet routed: give kube-proxy (and Kueuer's EndpointSlice mirror) a sync.
    step(`app ready, HPA ${metricRead ? 'reads its metric' : 'has read no metric yet'}; starting the load`);
    const clusterIp = (cp.getJson('service', setup.app, '-n', NS) as { spec: { clusterIP: string } }).spec.clusterIP;
    await sleep(5000);
    cluster.assertRoutedViaBridge(clusterIp);
    return await fn({ cluster, namespace: NS, url: `http://${clusterIp}:80/`, hpa, queue: kueuer ? `${NS}.${setup.app}` : undefined, notes });
  } finally {
    for (const c of cleanups) {
      try {
        await c();
      } catch (err) {
        console.error(`scenario cleanup: ${(err as Error).message}`);
      }
    }
  }
}
