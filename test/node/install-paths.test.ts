/**
 * The install paths README offers besides scripts/install.sh, proven on a
 * real node (issue 14): a plain `kubectl apply -k` of the shipped base, where
 * the webhook issues its own certificate and fills both caBundles; and
 * `helm install` of charts/kueuer in keda mode beside a real KEDA (v2.21.0,
 * built from the Go module proxy by scripts/dev/keda.sh), whose metrics-api
 * scaler reads the webhook's /backlog over HTTPS with the CA the webhook
 * keeps in KEDA's namespace. Each path ends with README's uninstall for it.
 *
 * One real cluster (test/helpers/node.ts) for both, in order; the broker is
 * the suite's RabbitMQ reached from pods through forwarders
 * (test/helpers/real-install.ts); the app is go-httpbin.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { hasCondition, mustSucceed, type KubeJson } from '../helpers/control-plane.js';
import { helmInstallKueuer } from '../helpers/helm-install.js';
import { buildImagesAsync } from '../helpers/images.js';
import { buildKedaAsync, installKeda, setHostAliases, type KedaBuild } from '../helpers/keda.js';
import { startRealCluster, type RealCluster } from '../helpers/node.js';
import { brokerForPods, rollout, runTool, userEnv, userKustomization, type BrokerForPods } from '../helpers/real-install.js';
import { httpbinDeployment, sleep, waitFor } from './fixtures.js';
import { load, request, summarize } from './load.js';

const root = join(import.meta.dirname, '..', '..');

describe('the install paths on a real node', () => {
  let cluster: RealCluster;
  let broker: BrokerForPods;
  let keda: KedaBuild;
  let kueuerImage = '';
  let httpbinImage = '';
  const env = () => userEnv(cluster.controlPlane, {}, [dirname(inject('helmBin'))]);
  const kubectl = (...args: string[]) => cluster.controlPlane.kubectl(args);
  const getJson = (...args: string[]): KubeJson => cluster.controlPlane.getJson(...args);
  const tryGetJson = (...args: string[]): KubeJson | null => cluster.controlPlane.tryGetJson(...args);
  const ok = mustSucceed;
  const podState = (ns: string) => () => kubectl('get', 'pods', '-n', ns, '-o', 'wide').stdout;
  const readyPods = (ns: string, app: string): KubeJson[] =>
    (getJson('pods', '-n', ns, '-l', `app=${app}`).items as KubeJson[]).filter((p) => !p.metadata.deletionTimestamp && hasCondition(p, 'Ready'));
  const serviceUrl = (ns: string, name: string) => `http://${getJson('service', name, '-n', ns).spec.clusterIP as string}:80`;
  /**
   * A Service whose selector was just given back (or whose pod just became Ready) is not routed at once: Kubernetes'
   * EndpointSlice controller writes its slice and kube-proxy programs the ClusterIP a moment later (connection refused
   * meanwhile). Waits up to 60 s for the first direct answer and returns it; the seconds it took are logged.
   */
  const answeredDirectly = async (ns: string, name: string) => {
    const started = Date.now();
    for (;;) {
      const answer = await request(`${serviceUrl(ns, name)}/get`, { timeoutMs: 2000 });
      if (answer.status === 200) {
        console.log(`${ns}/${name} answered directly ${((Date.now() - started) / 1000).toFixed(1)} s after it was restored`);
        return answer;
      }
      if (Date.now() - started > 60_000) throw new Error(`${ns}/${name} did not answer through its ClusterIP within 60 s (last status ${answer.status})`);
      await sleep(250);
    }
  };

  /** An opted-in namespace with its broker Secret and go-httpbin `name` in it, ready. */
  const deployApp = async (ns: string, name: string, annotations: Record<string, string>, replicas = 1) => {
    ok(cluster.controlPlane.apply(`apiVersion: v1\nkind: Namespace\nmetadata: {name: ${ns}, labels: {kueuer.io/injection: enabled}}\n`), ns);
    broker.createBackendSecret(ns);
    ok(cluster.controlPlane.apply(httpbinDeployment(ns, name, httpbinImage, { replicas, annotations })), name);
    await waitFor(`${replicas} ready pods of ${ns}/${name}`, 120_000, () => readyPods(ns, name).length === replicas, podState(ns));
    for (const p of readyPods(ns, name)) {
      expect((p.spec.initContainers as KubeJson[] | undefined)?.some((c) => c.name === 'kueuer-sidecar')).toBe(true);
    }
  };

  /** Requests through the Service's ClusterIP are answered by the app, through Kueuer (the responder's request id on each). */
  const expectQueuedAnswers = async (ns: string, name: string) => {
    const base = serviceUrl(ns, name);
    const answers = await load({ count: 20, concurrency: 4, url: (i) => `${base}/get?i=${i}` });
    expect(summarize(answers).failures).toEqual({});
    for (const a of answers) {
      expect(a.status).toBe(200);
      expect(a.headers['x-kueuer-request-id']).toMatch(/./);
      expect((JSON.parse(a.body.toString()) as { args: { i: string[] } }).args.i).toEqual([String(a.i)]);
    }
  };

  /**
   * 40 requests of 1.5 s at once through the Service, one at a time per pod: a backlog of ~39 for one pod (60 s of work,
   * the responder's default timeout) that the autoscaler must add pods for. Resolves once all are answered and the
   * workload reached 3 ready pods, with the seconds from the first request to the third ready pod.
   */
  const burstUntilScaled = async (ns: string, name: string, by: string, describeState: () => string) => {
    const t0 = Date.now();
    let maxReady = 1;
    let scaledAt = 0;
    const watching = (async () => {
      await waitFor(
        `${ns}/${name} to reach 3 ready replicas through ${by}`,
        150_000,
        () => {
          maxReady = Math.max(maxReady, readyPods(ns, name).length);
          return maxReady === 3;
        },
        describeState,
      );
      scaledAt = Date.now();
    })();
    const answers = await load({ count: 40, concurrency: 40, url: (i) => `${serviceUrl(ns, name)}/delay/1.5?i=${i}` });
    await watching;
    return { answers, seconds: (scaledAt - t0) / 1000 };
  };

  /** N requests through the Service's ClusterIP: how many were answered through Kueuer, and every answer's failure kinds. */
  const throughKueuer = async (ns: string, name: string, count: number) => {
    const answers = await load({ count, concurrency: 4, url: (i) => `${serviceUrl(ns, name)}/get?i=${i}` });
    return { answers, queued: answers.filter((a) => a.status === 200 && a.headers['x-kueuer-request-id']).length, failures: summarize(answers).failures };
  };

  /**
   * legacy/web, running since before the install, opted in word for word as docs/reference/annotations.md's "Opting in" says: every request
   * through Kueuer (also after the app's rollout), and its generated HPA scales it on its backlog.
   */
  const optInExistingApp = async () => {
    ok(kubectl('label', 'namespace', 'legacy', 'kueuer.io/injection=enabled'), 'label namespace');
    broker.createBackendSecret('legacy');
    ok(
      kubectl('-n', 'legacy', 'patch', 'deployment', 'web', '--type=merge', '-p', '{"spec":{"template":{"metadata":{"labels":{"kueuer.io/inject":"true"}}}}}'),
      'label pod template',
    );
    ok(kubectl('-n', 'legacy', 'label', 'service', 'web', 'kueuer.io/inject=true'), 'label Service');
    await rollout(cluster.controlPlane, 'legacy', 'web', 240);
    await waitFor(
      'injected pods of legacy/web',
      120_000,
      () => {
        const pods = readyPods('legacy', 'web');
        return pods.length > 0 && pods.every((p) => (p.spec.initContainers as KubeJson[] | undefined)?.some((c) => c.name === 'kueuer-sidecar'));
      },
      podState('legacy'),
    );
    // What kube-proxy routes the Service by: Kueuer's slice alone, once the webhook's controller removed what Kubernetes kept.
    const managers = () =>
      (getJson('endpointslices', '-n', 'legacy', '-l', 'kubernetes.io/service-name=web').items as KubeJson[])
        .map((s) => s.metadata.labels['endpointslice.kubernetes.io/managed-by'] as string)
        .sort();
    const settled = Date.now();
    await waitFor(
      "only Kueuer's EndpointSlice for legacy/web, no Endpoints",
      60_000,
      () => tryGetJson('endpoints', 'web', '-n', 'legacy') === null && managers().join() === 'kueuer.io',
      () => managers().join(),
    );
    const settleS = (Date.now() - settled) / 1000;
    const first = await throughKueuer('legacy', 'web', 30);
    expect(first.failures).toEqual({});
    expect(first.queued).toBe(30);
    // The app's rollout: new pod IPs; nothing may still point at the old ones.
    ok(kubectl('-n', 'legacy', 'rollout', 'restart', 'deployment/web'), 'rollout restart');
    await rollout(cluster.controlPlane, 'legacy', 'web', 240);
    const second = await throughKueuer('legacy', 'web', 30);
    expect(second.failures).toEqual({});
    expect(second.queued).toBe(30);
    const check = await runTool('node', [join(root, 'bin', 'kueuer.js'), 'check'], env(), 120_000);
    expect(check.output).toContain('ok   all traffic of the 2 opted-in Service(s) reaches the responders');
    expect(check.output).toMatch(/^ok {3}queue depths readable from the broker/m);

    // 40 requests of 1.5 s at once: a backlog for one pod that the generated HPA (external metric) must scale on.
    const hpa = await waitFor('the generated HPA kueuer-deploy-web', 60_000, () => tryGetJson('hpa', 'kueuer-deploy-web', '-n', 'legacy'));
    expect(hpa.spec.metrics.map((m: KubeJson) => m.type)).toEqual(['External']);
    const { answers: burst, seconds: scaleUpS } = await burstUntilScaled(
      'legacy',
      'web',
      'its HPA',
      () => kubectl('describe', 'hpa', 'kueuer-deploy-web', '-n', 'legacy').stdout,
    );
    expect(summarize(burst).failures).toEqual({});
    expect(burst.filter((a) => a.headers['x-kueuer-request-id']).length).toBe(40);
    console.log(
      `existing app opted in: ${first.queued}/30 through Kueuer (Kueuer's slice alone ${settleS.toFixed(1)} s after the rollout), ${second.queued}/30 after its rollout, 40/40 of the burst; 3 ready ${scaleUpS.toFixed(1)} s after the first of 40 requests`,
    );
  };

  const waitGone = (what: string, ...args: string[]) => waitFor(`${what} to be gone`, 180_000, () => tryGetJson(...args) === null);

  beforeAll(async () => {
    // Asynchronous and side by side: cold builds take minutes (KEDA's several).
    const [images, kedaBuild] = await Promise.all([buildImagesAsync(), buildKedaAsync()]);
    keda = kedaBuild;
    kueuerImage = images.kueuer.ref;
    httpbinImage = images.httpbin.ref;
    cluster = await startRealCluster({ binDir: inject('k8sBinDir'), nodeDir: inject('nodeDir') });
    for (const archive of [images.kueuer.archive, images.httpbin.archive, keda.operator.archive, keda.adapter.archive]) await cluster.importImage(archive);
    broker = await brokerForPods(cluster, inject('amqpUrl'));
  }, 45 * 60_000);

  afterAll(async () => {
    await broker?.close();
    await cluster?.stop();
  }, 3 * 60_000);

  it(
    'kubectl apply -k of the shipped base alone: the webhook issues its certificate, fills both caBundles, injects and serves; uninstall restores',
    async () => {
      // An app and its Service running before Kueuer is installed (issue 22): go-httpbin, not opted in, answering directly.
      ok(kubectl('create', 'namespace', 'legacy'), 'namespace legacy');
      const notOptedIn = httpbinDeployment('legacy', 'web', httpbinImage, {
        replicas: 1,
        annotations: { 'kueuer.io/max-replicas': '3', 'kueuer.io/target-backlog': '2' },
      })
        .replace(', kueuer.io/inject: "true"}', '}')
        .replace('  labels: {kueuer.io/inject: "true"}\n', '');
      expect(notOptedIn).not.toContain('kueuer.io/inject');
      ok(cluster.controlPlane.apply(notOptedIn), 'legacy/web');
      await waitFor('1 ready pod of legacy/web', 120_000, () => readyPods('legacy', 'web').length === 1, podState('legacy'));
      await answeredDirectly('legacy', 'web');
      const before = await load({ count: 10, concurrency: 2, url: (i) => `${serviceUrl('legacy', 'web')}/get?i=${i}` });
      expect(summarize(before).failures).toEqual({});
      expect(before.filter((a) => a.headers['x-kueuer-request-id'])).toEqual([]);

      // README, "Install on a cluster": the namespace and the broker Secret, then the user's kustomization of the base.
      ok(kubectl('create', 'namespace', 'kueuer-system'), 'namespace');
      broker.createBackendSecret('kueuer-system');
      mkdirSync(join(root, '.cache', 'real-node'), { recursive: true });
      const dir = mkdtempSync(join(root, '.cache', 'real-node', 'apply-k-'));
      try {
        writeFileSync(join(dir, 'kustomization.yaml'), userKustomization(dir, kueuerImage, {}));
        const applied = await runTool('kubectl', ['apply', '-k', dir], env(), 120_000);
        expect(applied.code, applied.output).toBe(0);
        await rollout(cluster.controlPlane, 'kueuer-system', 'kueuer-webhook', 240);
        await rollout(cluster.controlPlane, 'kueuer-system', 'kueuer-responder', 240);

        // No script made a certificate: the webhook did, and put its CA in both caBundles.
        const tls = getJson('secret', 'kueuer-webhook-tls', '-n', 'kueuer-system');
        const ca = tls.data['ca.crt'] as string;
        expect(ca.length).toBeGreaterThan(100);
        const webhookConfig = getJson('mutatingwebhookconfiguration', 'kueuer');
        for (const w of webhookConfig.webhooks as KubeJson[]) expect(w.clientConfig.caBundle, w.name as string).toBe(ca);
        const apiService = getJson('apiservice', 'v1beta1.external.metrics.k8s.io');
        expect(apiService.spec.caBundle).toBe(ca);
        await waitFor('the APIService to be Available', 60_000, () => hasCondition(getJson('apiservice', 'v1beta1.external.metrics.k8s.io'), 'Available'));

        await deployApp('plain', 'web', { 'kueuer.io/autoscale': 'false' });
        await expectQueuedAnswers('plain', 'web');
        await optInExistingApp();

        // docs/operations.md, "Uninstall": scripts/uninstall.sh with the kustomization that was applied.
        const removed = await runTool('bash', [join(root, 'scripts', 'uninstall.sh'), '--yes', dir], env(), 300_000);
        expect(removed.code, removed.output).toBe(0);
        const svc = getJson('service', 'web', '-n', 'plain');
        expect(svc.spec.selector).toEqual({ app: 'web' });
        expect(tryGetJson('mutatingwebhookconfiguration', 'kueuer')).toBeNull();
        const direct = await answeredDirectly('plain', 'web');
        expect(direct.headers['x-kueuer-request-id']).toBeUndefined();
        // The Service that was running before Kueuer: restored, its traffic goes to its pods directly again, none to a gone responder.
        expect(getJson('service', 'web', '-n', 'legacy').spec.selector).toEqual({ app: 'web' });
        await waitFor('the Endpoints of legacy/web back from Kubernetes', 60_000, () => tryGetJson('endpoints', 'web', '-n', 'legacy'));
        const after = await load({ count: 20, concurrency: 4, url: (i) => `${serviceUrl('legacy', 'web')}/get?i=${i}` });
        expect(summarize(after).failures).toEqual({});
        expect(after.filter((a) => a.headers['x-kueuer-request-id'])).toEqual([]);
        await waitGone('the namespace kueuer-system', 'namespace', 'kueuer-system');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
    15 * 60_000,
  );

  it(
    'helm install in keda mode beside a real KEDA: KEDA reads /backlog over TLS and scales the app up; the Helm uninstall restores',
    async () => {
      const kedaInstall = await installKeda(cluster.controlPlane, keda);
      expect(getJson('apiservice', 'v1beta1.external.metrics.k8s.io').spec.service).toMatchObject({ namespace: 'keda' });

      // README, "Helm", with the chart creating the broker Secret (broker.type=rabbitmq).
      const installed = await helmInstallKueuer({
        helmBin: inject('helmBin'),
        imageRef: kueuerImage,
        createNamespace: true,
        values: {
          'autoscaling.mode': 'keda',
          'broker.type': 'rabbitmq',
          'broker.url': broker.backendUrl,
          'broker.rabbitmq.managementUrl': broker.managementUrl,
        },
        env: env(),
      });
      expect(installed.code, installed.output).toBe(0);
      // Kueuer left KEDA's APIService alone, and keeps its CA in KEDA's namespace for the ClusterTriggerAuthentication.
      expect(getJson('apiservice', 'v1beta1.external.metrics.k8s.io').spec.service).toMatchObject({ namespace: 'keda' });
      const webhookCa = getJson('secret', 'kueuer-webhook-tls', '-n', 'kueuer-system').data['ca.crt'] as string;
      await waitFor(
        'the Secret keda/kueuer-backlog-tls holding the webhook CA',
        60_000,
        () => tryGetJson('secret', 'kueuer-backlog-tls', '-n', 'keda')?.data?.['ca.crt'] === webhookCa,
      );
      expect(tryGetJson('clustertriggerauthentication', 'kueuer-backlog')).not.toBeNull();
      // The harness has no cluster DNS: KEDA's operator gets the webhook Service's name as a host alias.
      await setHostAliases(cluster.controlPlane, 'keda', 'keda-operator', {
        'kueuer-webhook.kueuer-system.svc': { namespace: 'kueuer-system', service: 'kueuer-webhook' },
      });

      await deployApp('burst', 'worker', {
        'kueuer.io/min-replicas': '1',
        'kueuer.io/max-replicas': '3',
        'kueuer.io/target-backlog': '2',
      });
      const so = await waitFor(
        'the ScaledObject kueuer-deploy-worker to be Ready',
        120_000,
        () => {
          const o = tryGetJson('scaledobject', 'kueuer-deploy-worker', '-n', 'burst');
          return hasCondition(o, 'Ready') ? o : null;
        },
        () => kubectl('describe', 'scaledobject', '-n', 'burst').stdout + kubectl('logs', '-n', 'keda', 'deployment/keda-operator', '--tail=30').stdout,
      );
      expect(so.spec.triggers[0].metadata.authMode).toBe('tls');
      const hpaName = (so.status.hpaName as string | undefined) ?? 'keda-hpa-kueuer-deploy-worker';
      await waitFor(`KEDA's HPA ${hpaName}`, 60_000, () => tryGetJson('hpa', hpaName, '-n', 'burst'));

      // 40 requests of 1.5 s, one at a time per pod: a backlog of ~39 for one pod (60 s of work, the responder's
      // default timeout); KEDA's HPA must add pods for all to be answered.
      const { answers, seconds: scaleUpS } = await burstUntilScaled(
        'burst',
        'worker',
        'KEDA',
        () =>
          kubectl('describe', 'hpa', hpaName, '-n', 'burst').stdout +
          kubectl('logs', '-n', 'keda', 'deployment/keda-operator', '--tail=30').stdout +
          kubectl('logs', '-n', 'keda', 'deployment/keda-metrics-apiserver', '--tail=20').stdout,
      );
      expect(summarize(answers).failures).toEqual({});
      // The scaling was KEDA's: the only HPA is the one KEDA made, on its external metric.
      expect((getJson('hpa', '-n', 'burst').items as KubeJson[]).map((h) => h.metadata.name)).toEqual([hpaName]);
      const hpa = getJson('hpa', hpaName, '-n', 'burst');
      expect(hpa.spec.metrics.map((m: KubeJson) => m.type)).toEqual(['External']);
      expect(hpa.status.desiredReplicas).toBeGreaterThan(1);
      console.log(
        `keda mode: KEDA ready ${kedaInstall.readySeconds.toFixed(1)} s after apply; worker at 3 ready ${scaleUpS.toFixed(1)} s after the first of 40 requests; all answered`,
      );

      // docs/operations.md, "Uninstall", for a Helm install.
      const restored = await runTool('bash', [join(root, 'scripts', 'uninstall.sh'), '--yes', '--restore-only'], env(), 300_000);
      expect(restored.code, restored.output).toBe(0);
      expect(restored.output).toContain('deleted the EndpointSlices mirrored for queued Services');
      const removed = await runTool(inject('helmBin'), ['uninstall', 'kueuer', '--namespace', 'kueuer-system', '--wait'], env(), 300_000);
      expect(removed.code, removed.output).toBe(0);
      // The deletions the script printed for after the Helm uninstall.
      ok(
        kubectl('delete', 'horizontalpodautoscalers.autoscaling', '--all-namespaces', '-l', 'app.kubernetes.io/managed-by=kueuer', '--ignore-not-found'),
        'HPAs',
      );
      ok(kubectl('delete', 'scaledobjects.keda.sh', '--all-namespaces', '-l', 'app.kubernetes.io/managed-by=kueuer', '--ignore-not-found'), 'ScaledObjects');
      expect(tryGetJson('endpointslice', 'kueuer-worker', '-n', 'burst')).toBeNull();
      expect(getJson('service', 'worker', '-n', 'burst').spec.selector).toEqual({ app: 'worker' });
      const direct = await answeredDirectly('burst', 'worker');
      expect(direct.headers['x-kueuer-request-id']).toBeUndefined();
    },
    20 * 60_000,
  );
});
