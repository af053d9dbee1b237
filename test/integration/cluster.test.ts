/**
 * End to end through a real kube-apiserver (test/helpers/control-plane.ts):
 * the apiserver calls the real `kueuer webhook` process over TLS with the
 * caBundle from our MutatingWebhookConfiguration, applies its JSON patches,
 * validates and stores the results. The ReplicaSet controller creates the
 * pods. A real `kueuer responder --routes cluster` learns its routes from the
 * stored Services.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadAllYaml, dumpYaml } from '@kubernetes/client-node';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startSidecar, type RunningSidecar } from '../helpers/components.js';
import type { Transport } from '../../shared/transport/transport.js';
import { startControlPlane, type ControlPlane } from '../helpers/control-plane.js';
import { request } from '../helpers/http.js';
import { msgIs, spawnKueuer, type KueuerProcess } from '../helpers/processes.js';
import { newTransport, silentLog, waitFor } from '../helpers/stack.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';
import { generateCerts } from '../helpers/webhook.js';
import { freePort } from '../helpers/net.js';

const amqpUrl = inject('amqpUrl');
const root = join(import.meta.dirname, '..', '..');

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

describe('through a real kube-apiserver', () => {
  let cp: ControlPlane;
  let webhook: KueuerProcess;
  /** The shipped MutatingWebhookConfiguration, pointed at the local webhook process. */
  let hookConfig: Json;
  const processes: KueuerProcess[] = [];
  const cleanups: Array<() => Promise<void>> = [];

  const kubectl = (...args: string[]) => cp.kubectl(args);
  const apply = (yaml: string) => cp.apply(yaml);
  const getJson = (...args: string[]): Json => cp.getJson(...args);

  beforeAll(async () => {
    cp = await startControlPlane(inject('k8sBinDir'));
    const certs = generateCerts();
    const port = await freePort();
    webhook = spawnKueuer(
      ['webhook', '--listen', `127.0.0.1:${port}`, '--tls-cert', certs.cert, '--tls-key', certs.key, '--sidecar-image', 'ghcr.io/kueuer/kueuer:e2e'],
      { KUBECONFIG: cp.kubeconfig },
    );
    processes.push(webhook);
    const ready = await webhook.waitForLog(msgIs('webhook ready'), 30_000);
    expect(ready.nativeSidecars).toBe(true); // detected from the apiserver's version (1.34)

    // Our MutatingWebhookConfiguration as shipped, pointed at the local process the way envtest does.
    const [config] = loadAllYaml(readFileSync(join(root, 'manifests/base/webhook/mutating-webhook-configuration.yaml'), 'utf8')) as Json[];
    for (const w of config!.webhooks) w.clientConfig = { url: `https://127.0.0.1:${port}/mutate`, caBundle: certs.ca.toString('base64') };
    hookConfig = config!;
    expect(apply(dumpYaml(config)).code).toBe(0);

    const setup = `
apiVersion: v1
kind: Namespace
metadata: {name: kueuer-system}
---
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {kueuer.io/injection: enabled}}
---
apiVersion: v1
kind: Namespace
metadata: {name: plain}
---
apiVersion: v1
kind: Service
metadata: {name: kueuer-responder, namespace: kueuer-system}
spec:
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: kueuer-responder-1
  namespace: kueuer-system
  labels: {kubernetes.io/service-name: kueuer-responder}
addressType: IPv4
endpoints:
- addresses: ["10.1.2.3"]
  conditions: {ready: true}
ports: [{name: http, port: 8080, protocol: TCP}]
`;
    const r = apply(setup);
    expect(r.stderr).toBe('');
  }, 5 * 60_000);

  afterAll(async () => {
    for (const c of cleanups.reverse()) await c();
    for (const p of processes) p.child.kill('SIGKILL');
    await cp?.stop();
  }, 60_000);

  const INJECT = { 'kueuer.io/inject': 'true' };
  const deployment = (ns: string, name: string, annotations: Record<string, string>, labels: Record<string, string> = INJECT) => `
apiVersion: apps/v1
kind: Deployment
metadata: {name: ${name}, namespace: ${ns}}
spec:
  replicas: 2
  selector: {matchLabels: {app: ${name}}}
  template:
    metadata:
      labels: ${JSON.stringify({ app: name, ...labels })}
      annotations: ${JSON.stringify(annotations)}
    spec:
      containers:
      - name: app
        image: example.com/${name}:1
        ports: [{containerPort: 8080, name: http}]
`;

  async function podsOf(ns: string, app: string, count: number): Promise<Json[]> {
    let pods: Json[] = [];
    await waitFor(
      () => {
        pods = getJson('pods', '-n', ns, '-l', `app=${app}`).items as Json[];
        return pods.length === count;
      },
      30_000,
      `${count} pods of ${ns}/${app}`,
    );
    return pods;
  }

  it('injects exactly one sidecar into the pods the ReplicaSet controller creates', async () => {
    expect(apply(deployment('shop', 'web', { 'kueuer.io/concurrency': '3' })).code).toBe(0);
    const pods = await podsOf('shop', 'web', 2);
    for (const pod of pods) {
      const all = [...(pod.spec.initContainers ?? []), ...pod.spec.containers] as Json[];
      const sidecars = all.filter((c) => c.name === 'kueuer-sidecar');
      expect(sidecars).toHaveLength(1);
      expect(pod.spec.initContainers.map((c: Json) => c.name)).toEqual(['kueuer-sidecar']);
      expect(sidecars[0]!.restartPolicy).toBe('Always');
      const env = Object.fromEntries(sidecars[0]!.env.map((e: Json) => [e.name, e.value]));
      expect(env).toMatchObject({ KUEUER_APP: '127.0.0.1:8080', KUEUER_QUEUE: 'shop.web', KUEUER_CONCURRENCY: '3' });
      expect(JSON.parse(pod.metadata.annotations['kueuer.io/status'])).toMatchObject({ mode: 'native', queue: 'shop.web', appPort: 8080 });
      expect(pod.spec.containers.map((c: Json) => c.name)).toEqual(['app']);
    }
  });

  /** Kinds of other projects' CRDs (cert-manager, Prometheus Operator, Strimzi, KEDA), not installed in the test cluster. */
  const FOREIGN_KINDS = new Set(['Certificate', 'Issuer', 'ServiceMonitor', 'PodMonitor', 'KafkaTopic', 'ClusterTriggerAuthentication']);

  it.each(['manifests', ...readdirSync(join(root, 'manifests', 'overlays')).map((o) => `manifests/overlays/${o}`)])(
    "%s renders with kustomize and every object passes the apiserver's strict validation (server-side dry run)",
    (dir) => {
      const rendered = kubectl('kustomize', join(root, dir));
      expect(rendered.stderr).toBe('');
      const objects = loadAllYaml(rendered.stdout) as Json[];
      expect(objects.length).toBeGreaterThan(10);
      const ours = objects.filter((o) => !FOREIGN_KINDS.has(o.kind));
      // Kueuer's own pods run as non-root with a read-only root filesystem and no capabilities.
      for (const d of objects.filter((o) => o.kind === 'Deployment')) {
        expect(d.spec.template.spec.securityContext.runAsNonRoot, d.metadata.name).toBe(true);
        for (const c of d.spec.template.spec.containers)
          expect(c.securityContext, `${d.metadata.name}/${c.name}`).toMatchObject({
            readOnlyRootFilesystem: true,
            allowPrivilegeEscalation: false,
            capabilities: { drop: ['ALL'] },
          });
      }
      for (const o of objects.filter((o) => FOREIGN_KINDS.has(o.kind)))
        expect(o.apiVersion).toMatch(/^(cert-manager\.io|monitoring\.coreos\.com|kafka\.strimzi\.io|keda\.sh)\//);
      // The keda component's Role (writing the Secret kueuer-backlog-tls) lives in KEDA's namespace, which KEDA's install creates.
      if (ours.some((o) => o.metadata?.namespace === 'keda'))
        expect(cp.apply(dumpYaml({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'keda' } })).code).toBe(0);
      const r = cp.kubectl(['apply', '--dry-run=server', '--validate=strict', '-f', '-'], ours.map((o) => dumpYaml(o)).join('---\n'));
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout.trim().split('\n')).toHaveLength(ours.length);
    },
  );

  it('leaves a namespace without the label untouched', async () => {
    expect(apply(deployment('plain', 'web', {})).code).toBe(0);
    for (const pod of await podsOf('plain', 'web', 2)) {
      expect(pod.spec.initContainers).toBeUndefined();
      expect(pod.spec.containers.map((c: Json) => c.name)).toEqual(['app']);
      expect(pod.metadata.annotations?.['kueuer.io/status']).toBeUndefined();
    }
  });

  it('refuses a pod with a bad annotation, and kubectl shows our message', async () => {
    const r = apply(`
apiVersion: v1
kind: Pod
metadata: {name: typo, namespace: shop, labels: {kueuer.io/inject: "true"}, annotations: {kueuer.io/concurrency: "many"}}
spec: {containers: [{name: app, image: example.com/x:1, ports: [{containerPort: 80}]}]}
`);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('admission webhook "pods.kueuer.io" denied the request');
    expect(r.stderr).toContain('kueuer.io/concurrency: expected an integer from 1 to 1000, got "many"');
    expect(kubectl('get', 'pod', 'typo', '-n', 'shop').code).not.toBe(0);
  });

  it('refuses a pod whose app container declares the sidecar admin port, and kubectl shows which container and how to fix it', () => {
    const pod = (annotations: Record<string, string>) => `
apiVersion: v1
kind: Pod
metadata: {name: metrics-on-9091, namespace: shop, labels: {kueuer.io/inject: "true"}, annotations: ${JSON.stringify(annotations)}}
spec: {containers: [{name: app, image: example.com/x:1, ports: [{containerPort: 8080}, {containerPort: 9091, name: metrics}]}]}
`;
    const r = apply(pod({}));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(
      'kueuer.io/admin-port: the sidecar\'s admin port 9091 is also port 9091 ("metrics") of container "app"; set kueuer.io/admin-port',
    );
    expect(apply(pod({ 'kueuer.io/admin-port': '9092' })).code).toBe(0);
    const sidecar = getJson('pod', 'metrics-on-9091', '-n', 'shop').spec.initContainers[0];
    expect(sidecar.ports).toEqual([{ name: 'kueuer-admin', containerPort: 9092, protocol: 'TCP' }]);
  });

  // Issue 12, item 14. No job or cronjob controller runs here, so the test creates what they would: the Job a CronJob creates, and its pod.
  it("names the default queue of a CronJob's pods after the CronJob, not the Job of one run", () => {
    expect(
      apply(`
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly, namespace: shop}
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers: [{name: app, image: example.com/report:1, ports: [{containerPort: 8080}]}]
`).code,
    ).toBe(0);
    const cronJob = getJson('cronjob', 'nightly', '-n', 'shop');
    const jobOf = (name: string, owner: string) => `
apiVersion: batch/v1
kind: Job
metadata:
  name: ${name}
  namespace: shop
  ${owner}
spec:
  template:
    metadata: {labels: {batch.kubernetes.io/job-name: ${name}}}
    spec:
      restartPolicy: Never
      containers: [{name: app, image: example.com/report:1, ports: [{containerPort: 8080}]}]
`;
    const podOf = (job: Json, annotations: Record<string, string> = {}) => `
apiVersion: v1
kind: Pod
metadata:
  generateName: ${job.metadata.name}-
  namespace: shop
  labels: {kueuer.io/inject: "true"}
  annotations: ${JSON.stringify(annotations)}
  ownerReferences: [{apiVersion: batch/v1, kind: Job, name: ${job.metadata.name}, uid: ${job.metadata.uid}, controller: true, blockOwnerDeletion: true}]
spec:
  restartPolicy: Never
  containers: [{name: app, image: example.com/report:1, ports: [{containerPort: 8080}]}]
`;
    const queueOfNewPod = (yaml: string): string => {
      const r = cp.kubectl(['create', '-f', '-', '-o', 'json'], yaml);
      expect(r.stderr).toBe('');
      return JSON.parse(JSON.parse(r.stdout).metadata.annotations['kueuer.io/status']).queue as string;
    };
    // Two runs of the CronJob: one queue.
    for (const run of ['nightly-29000000', 'nightly-29001440']) {
      const owner = `ownerReferences: [{apiVersion: batch/v1, kind: CronJob, name: nightly, uid: ${cronJob.metadata.uid}, controller: true, blockOwnerDeletion: true}]`;
      expect(apply(jobOf(run, owner)).code).toBe(0);
      expect(queueOfNewPod(podOf(getJson('job', run, '-n', 'shop')))).toBe('shop.nightly');
    }
    // A Job named by hand keeps its name; kueuer.io/queue always wins.
    expect(apply(jobOf('reindex', '')).code).toBe(0);
    const reindex = getJson('job', 'reindex', '-n', 'shop');
    expect(queueOfNewPod(podOf(reindex))).toBe('shop.reindex');
    expect(queueOfNewPod(podOf(reindex, { 'kueuer.io/queue': 'batch' }))).toBe('shop.batch');
    // A Job that cannot be read (deleted already) refuses the pod with what to do.
    const gone = { metadata: { name: 'gone-29000000', uid: '00000000-0000-4000-8000-000000000000' } };
    const r = cp.kubectl(['create', '-f', '-'], podOf(gone));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('Job shop/gone-29000000');
    expect(r.stderr).toContain('set kueuer.io/queue on the pod template');
  });

  it('rewrites a labelled Service, routes it through the responder, and restores it when the label is removed', async () => {
    expect(
      apply(`
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop, labels: {kueuer.io/inject: "true"}}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
`).code,
    ).toBe(0);
    const svc = getJson('service', 'web', '-n', 'shop');
    const responderPort = Number(svc.metadata.annotations['kueuer.io/responder-port']);
    expect(responderPort).toBeGreaterThanOrEqual(20000);
    expect(svc.spec.selector).toBeUndefined();
    expect(svc.spec.ports[0].targetPort).toBe(responderPort);
    expect(svc.spec.clusterIP).toMatch(/^10\.0\.0\./);
    expect(JSON.parse(svc.metadata.annotations['kueuer.io/original-service'])).toEqual({
      selector: { app: 'web' },
      targetPorts: [{ port: 80, targetPort: 'http' }],
    });

    // The webhook process keeps the Service's EndpointSlice: the responder pods on its port.
    let slice: Json | undefined;
    await waitFor(
      () => {
        const r = kubectl('get', 'endpointslice', 'kueuer-web', '-n', 'shop', '-o', 'json');
        if (r.code === 0) slice = JSON.parse(r.stdout) as Json;
        return r.code === 0;
      },
      15_000,
      'the EndpointSlice of shop/web',
    );
    expect(slice!.metadata.labels['kubernetes.io/service-name']).toBe('web');
    expect(slice!.endpoints.map((e: Json) => e.addresses[0])).toEqual(['10.1.2.3']);
    expect(slice!.ports).toEqual([{ name: 'http', port: responderPort, protocol: 'TCP' }]);
    expect(slice!.metadata.ownerReferences[0].uid).toBe(svc.metadata.uid);

    // A responder learns the route from the cluster and serves the Service's queue on that port.
    const app: TestApp = await startTestApp();
    cleanups.push(() => app.close());
    app.handle((req, res) => res.end(`web answered ${req.url}`));
    const transport: Transport = await newTransport('amqp');
    const sidecar: RunningSidecar = await startSidecar(
      { app: { host: '127.0.0.1', port: app.port }, queue: 'shop.web', concurrency: 2, maxResponseBytes: 1 << 20 },
      transport,
      new Registry(),
      silentLog,
    );
    cleanups.push(async () => {
      await sidecar.stop();
      await transport.close();
    });
    const responder = spawnKueuer(['responder', '--routes', 'cluster', '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--backend', amqpUrl], {
      KUBECONFIG: cp.kubeconfig,
      KUEUER_LISTEN: '127.0.0.1:0',
    });
    processes.push(responder);
    await responder.waitForLog((l) => l.msg === 'serving route' && l.port === responderPort, 20_000);
    const res = await request(`http://127.0.0.1:${responderPort}`, { path: '/via-service?x=1', headers: { host: 'web.shop.svc.cluster.local' } });
    expect(res.status).toBe(200);
    expect(res.body.toString()).toBe('web answered /via-service?x=1');

    // Removing the label restores the Service (the objectSelector matches the old object, so the UPDATE
    // still reaches the webhook); its slice and route go away.
    expect(kubectl('label', 'service', 'web', '-n', 'shop', 'kueuer.io/inject-').code).toBe(0);
    const restored = getJson('service', 'web', '-n', 'shop');
    expect(restored.spec.selector).toEqual({ app: 'web' });
    expect(restored.spec.ports[0].targetPort).toBe('http');
    expect(restored.metadata.annotations?.['kueuer.io/original-service']).toBeUndefined();
    expect(restored.metadata.annotations?.['kueuer.io/responder-port']).toBeUndefined();
    await waitFor(() => kubectl('get', 'endpointslice', 'kueuer-web', '-n', 'shop').code !== 0, 15_000, 'the slice to be deleted');
    await responder.waitForLog((l) => l.msg === 'closing route' && l.port === responderPort, 15_000);
  });

  // Issue 12, item 13: what a request sets while it removes the kueuer.io/inject label (or while the Service is queued) is the user's intent.
  const TIMEOUT = { 'kueuer.io/timeout': '30s' };
  const service = (name: string, labels: Record<string, string>, annotations: Record<string, string>, targetPort: string | number, selector = name) => `
apiVersion: v1
kind: Service
metadata: {name: ${name}, namespace: shop, labels: ${JSON.stringify(labels)}, annotations: ${JSON.stringify(annotations)}}
spec:
  selector: {app: ${selector}}
  ports: [{name: http, port: 80, targetPort: ${targetPort}}]
`;
  const queuedPort = (name: string): number => {
    const svc = getJson('service', name, '-n', 'shop');
    expect(svc.spec.selector).toBeUndefined();
    const port = Number(svc.metadata.annotations['kueuer.io/responder-port']);
    expect(svc.spec.ports[0].targetPort).toBe(port);
    return port;
  };

  it('client-side kubectl apply of a manifest that drops the kueuer.io/inject label and sets targetPort keeps the new port', () => {
    expect(apply(service('csa', INJECT, {}, 'http')).code).toBe(0);
    queuedPort('csa');
    const r = apply(service('csa', {}, {}, 8080));
    expect(r.stderr).toBe('');
    const svc = getJson('service', 'csa', '-n', 'shop');
    expect(svc.spec.selector).toEqual({ app: 'csa' });
    expect(svc.spec.ports[0].targetPort).toBe(8080);
    expect(svc.metadata.annotations['kueuer.io/original-service']).toBeUndefined();
    expect(svc.metadata.annotations['kueuer.io/responder-port']).toBeUndefined();
  });

  it('client-side kubectl apply while queued records a new targetPort and selector; kubectl label kueuer.io/inject- gives them back', () => {
    expect(apply(service('csa2', INJECT, {}, 'http')).code).toBe(0);
    const port = queuedPort('csa2');
    expect(apply(service('csa2', INJECT, {}, 8081, 'csa2-v2')).stderr).toBe('');
    expect(queuedPort('csa2')).toBe(port); // still queued, on the same responder port
    expect(JSON.parse(getJson('service', 'csa2', '-n', 'shop').metadata.annotations['kueuer.io/original-service'])).toEqual({
      selector: { app: 'csa2-v2' },
      targetPorts: [{ port: 80, targetPort: 8081 }],
    });
    expect(kubectl('label', 'service', 'csa2', '-n', 'shop', 'kueuer.io/inject-').code).toBe(0);
    const svc = getJson('service', 'csa2', '-n', 'shop');
    expect(svc.spec.selector).toEqual({ app: 'csa2-v2' });
    expect(svc.spec.ports[0].targetPort).toBe(8081);
  });

  it('a targetPort changed with kubectl patch while queued is restored by kubectl label kueuer.io/inject-', () => {
    expect(apply(service('patched', INJECT, {}, 'http')).code).toBe(0);
    const port = queuedPort('patched');
    const p = kubectl(
      'patch',
      'service',
      'patched',
      '-n',
      'shop',
      '--type=json',
      '-p',
      JSON.stringify([{ op: 'replace', path: '/spec/ports/0/targetPort', value: 9000 }]),
    );
    expect(p.stderr).toBe('');
    expect(queuedPort('patched')).toBe(port);
    expect(kubectl('label', 'service', 'patched', '-n', 'shop', 'kueuer.io/inject-').code).toBe(0);
    const svc = getJson('service', 'patched', '-n', 'shop');
    expect(svc.spec.selector).toEqual({ app: 'patched' });
    expect(svc.spec.ports[0].targetPort).toBe(9000);
  });

  it('server-side kubectl apply that drops the kueuer.io/inject label, keeps kueuer.io/timeout and sets targetPort keeps the new port', () => {
    const ssa = (yaml: string) => cp.kubectl(['apply', '--server-side', '--field-manager=ci', '-f', '-'], yaml);
    expect(ssa(service('ssa', INJECT, TIMEOUT, 'http')).stderr).toBe('');
    queuedPort('ssa');
    // While queued, a new targetPort is recorded…
    expect(ssa(service('ssa', INJECT, TIMEOUT, 8082)).stderr).toBe('');
    queuedPort('ssa');
    // …and dropping the label gives the Service its selector and the port this request sets.
    expect(ssa(service('ssa', {}, TIMEOUT, 8083)).stderr).toBe('');
    const svc = getJson('service', 'ssa', '-n', 'shop');
    expect(svc.spec.selector).toEqual({ app: 'ssa' });
    expect(svc.spec.ports[0].targetPort).toBe(8083);
    expect(svc.metadata.annotations['kueuer.io/timeout']).toBe('30s');
    expect(svc.metadata.annotations['kueuer.io/original-service']).toBeUndefined();
    expect(svc.metadata.annotations['kueuer.io/responder-port']).toBeUndefined();
  });

  it('server-side kubectl apply of a manifest that only drops the kueuer.io/inject label restores the port recorded while queued', () => {
    const ssa = (yaml: string) => cp.kubectl(['apply', '--server-side', '--field-manager=ci', '-f', '-'], yaml);
    expect(ssa(service('ssa2', INJECT, TIMEOUT, 'http')).stderr).toBe('');
    expect(ssa(service('ssa2', INJECT, TIMEOUT, 8084)).stderr).toBe('');
    expect(ssa(service('ssa2', {}, TIMEOUT, 8084)).stderr).toBe('');
    const svc = getJson('service', 'ssa2', '-n', 'shop');
    expect(svc.spec.selector).toEqual({ app: 'ssa2' });
    expect(svc.spec.ports[0].targetPort).toBe(8084);
  });

  // Issue 14, item 5: the objectSelector bounds the blast radius of failurePolicy: Fail to opted-in objects.
  const plainPod = (name: string, labels: Record<string, string>, annotations: Record<string, string> = {}) => `
apiVersion: v1
kind: Pod
metadata: {name: ${name}, namespace: shop, labels: ${JSON.stringify(labels)}, annotations: ${JSON.stringify(annotations)}}
spec: {containers: [{name: app, image: example.com/x:1, ports: [{containerPort: 8080}]}]}
`;

  it('a pod with only the deprecated kueuer.io/inject annotation is no longer sent to the webhook; adding the label opts it in', () => {
    expect(apply(plainPod('legacy', {}, INJECT)).stderr).toBe('');
    const legacy = getJson('pod', 'legacy', '-n', 'shop');
    expect(legacy.spec.initContainers).toBeUndefined();
    expect(legacy.metadata.annotations['kueuer.io/status']).toBeUndefined();
    // Label and annotation together: injected as before, with no deprecation warning.
    const both = cp.kubectl(['create', '-f', '-', '-o', 'json'], plainPod('both', INJECT, INJECT));
    expect(both.stderr).toBe('');
    expect(JSON.parse(both.stdout).spec.initContainers.map((c: Json) => c.name)).toEqual(['kueuer-sidecar']);
  });

  it('while the webhook is down, unlabelled pods and Services in an opted-in namespace are admitted and labelled ones refused (failurePolicy: Fail)', async () => {
    const down = structuredClone(hookConfig);
    const closed = await freePort(); // nothing listens there
    for (const w of down.webhooks) w.clientConfig = { ...w.clientConfig, url: `https://127.0.0.1:${closed}/mutate` };
    expect(apply(dumpYaml(down)).code).toBe(0);
    try {
      // The apiserver picks the change up from its watch: wait until a labelled pod is refused.
      let refused = { code: 0, stderr: '' };
      await waitFor(
        () => {
          refused = cp.kubectl(['create', '--dry-run=server', '-f', '-'], plainPod('labelled-while-down', INJECT));
          return refused.code !== 0;
        },
        20_000,
        'the apiserver to call the closed port',
      );
      expect(refused.stderr).toContain('failed calling webhook "pods.kueuer.io"');
      expect(kubectl('get', 'pod', 'labelled-while-down', '-n', 'shop').code).not.toBe(0);

      // Not labelled: never sent, so created unchanged.
      expect(apply(plainPod('unlabelled-while-down', { app: 'other' })).stderr).toBe('');
      expect(getJson('pod', 'unlabelled-while-down', '-n', 'shop').spec.initContainers).toBeUndefined();
      expect(apply(service('unlabelled-while-down', {}, {}, 8080)).stderr).toBe('');
      expect(getJson('service', 'unlabelled-while-down', '-n', 'shop').spec.selector).toEqual({ app: 'unlabelled-while-down' });

      // A labelled Service is refused too.
      const svc = apply(service('labelled-while-down', INJECT, {}, 8080));
      expect(svc.code).not.toBe(0);
      expect(svc.stderr).toContain('failed calling webhook "services.kueuer.io"');
    } finally {
      expect(apply(dumpYaml(hookConfig)).code).toBe(0);
      await waitFor(
        () => cp.kubectl(['create', '--dry-run=server', '-f', '-'], plainPod('labelled-after', INJECT)).code === 0,
        20_000,
        'the webhook to be reachable again',
      );
    }
  });
});
