/**
 * Kueuer installed and serving from real pods (issue 16). One real
 * single-node cluster (test/helpers/node.ts: containerd, kubelet, kube-proxy,
 * scheduler beside the test control plane) for every scenario: only one can
 * exist at a time, so they share it, in order. Kueuer is installed as a user
 * would (test/helpers/real-install.ts: the shipped base in a kustomization of
 * one's own with the locally built image, scripts/install.sh), the broker is
 * the suite's RabbitMQ reached from pods through a forwarder on the bridge,
 * and the app is go-httpbin (a program nobody here wrote) in its own image.
 *
 * Clients send from this machine to the Service ClusterIP, through
 * kube-proxy's rules, like any in-cluster client. Every scenario records its
 * counts; KUEUER_REAL_NODE_REPORT=docs/real-node.md rewrites the results
 * table there.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { hasCondition, mustSucceed, type KubeJson } from '../helpers/control-plane.js';
import { buildImagesAsync } from '../helpers/images.js';
import { startRealCluster, type RealCluster } from '../helpers/node.js';
import { installKueuer, type KueuerInstall } from '../helpers/real-install.js';
import { httpbinDeployment as httpbinIn, sleep, waitFor } from './fixtures.js';
import { load, request, summarize, type Answer, type LoadSummary } from './load.js';

const root = join(import.meta.dirname, '..', '..');
const NS = 'shop';

interface Row {
  scenario: string;
  requests: number;
  lost: number;
  detail: string;
}
const rows: Row[] = [];
const podStarts: Array<{ pod: string; seconds: number }> = [];
const timings: Record<string, number> = {};

function record(scenario: string, s: LoadSummary, detail = ''): void {
  const failures = Object.entries(s.failures)
    .map(([k, v]) => `${v}× ${k}`)
    .join(', ');
  rows.push({
    scenario,
    requests: s.sent,
    lost: s.lost,
    detail: [detail, failures && `failures: ${failures}`, `slowest ${s.maxMs} ms`].filter(Boolean).join('; '),
  });
}

const httpbinDeployment = (name: string, image: string, opts: Parameters<typeof httpbinIn>[3]) => httpbinIn(NS, name, image, opts);

describe('Kueuer installed on a real node', () => {
  let cluster: RealCluster;
  let install: KueuerInstall;
  let httpbinImage = '';
  const started = Date.now();

  const kubectl = (...args: string[]) => cluster.controlPlane.kubectl(args);
  const ok = mustSucceed;
  const getJson = (...args: string[]): KubeJson => cluster.controlPlane.getJson(...args);
  const pods = (app: string, ns = NS): KubeJson[] =>
    (getJson('pods', '-n', ns, '-l', `app=${app}`).items as KubeJson[]).filter((p) => !p.metadata.deletionTimestamp);
  const readyPods = (app: string): KubeJson[] => pods(app).filter((p) => hasCondition(p, 'Ready'));
  const serviceUrl = (name: string): string => `http://${getJson('service', name, '-n', NS).spec.clusterIP as string}:80`;
  const podState =
    (ns = NS) =>
    () =>
      kubectl('get', 'pods', '-n', ns, '-o', 'wide').stdout;

  /** Seconds from a pod's creation to its Ready condition (API timestamps: whole seconds). */
  const recordPodStarts = (app: string): void => {
    for (const p of readyPods(app)) {
      const ready = (p.status.conditions as KubeJson[]).find((c) => c.type === 'Ready');
      const seconds = (Date.parse(ready!.lastTransitionTime as string) - Date.parse(p.metadata.creationTimestamp as string)) / 1000;
      const pod = `${NS}/${p.metadata.name as string}`;
      if (!podStarts.some((s) => s.pod === pod)) podStarts.push({ pod, seconds });
    }
  };

  const waitReady = (app: string, count: number, timeoutMs = 90_000) =>
    waitFor(`${count} ready pods of ${app}`, timeoutMs, () => pods(app).length === count && readyPods(app).length === count, podState());

  /** kubectl without blocking this process (the load generator runs in it): exit code and output. */
  const kubectlAsync = (...args: string[]): Promise<{ code: number; out: string }> =>
    new Promise((resolve) => {
      const child = spawn(join(cluster.controlPlane.binDir, 'kubectl'), [`--kubeconfig=${cluster.controlPlane.kubeconfig}`, ...args]);
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      child.on('close', (code) => resolve({ code: code ?? 1, out }));
    });

  /** 300 requests, 10 at a time, to the Service `app`; `disrupt` runs once, after the 50th answer (its failure fails the test). */
  const loadWithDisruption = async (app: string, disrupt: () => unknown): Promise<Answer[]> => {
    let disruption: Promise<unknown> | undefined;
    const base = serviceUrl(app);
    const answers = await load({
      count: 300,
      concurrency: 10,
      url: (i) => `${base}/delay/0.05?i=${i}`,
      onAnswer: (n) => {
        if (n >= 50 && !disruption)
          disruption = Promise.resolve()
            .then(disrupt)
            .then(
              () => undefined,
              (err: unknown) => err,
            );
      },
    });
    const failed = await disruption;
    if (failed) throw failed;
    return answers;
  };

  /** Names of the responder pods not being deleted. */
  const responderPods = (): string[] =>
    (getJson('pods', '-n', 'kueuer-system', '-l', 'app.kubernetes.io/component=responder').items as KubeJson[])
      .filter((p) => !p.metadata.deletionTimestamp)
      .map((p) => p.metadata.name as string);

  /** The Deployment's spec.replicas is `count` and only that many pods are left. */
  const waitScaledTo = (app: string, count: number, timeoutMs: number) =>
    waitFor(
      `${app} to scale to ${count}`,
      timeoutMs,
      () => getJson('deployment', app, '-n', NS).spec.replicas === count && pods(app).length === count,
      podState(),
    );

  beforeAll(async () => {
    const t0 = Date.now();
    // Asynchronous: a cold build takes minutes, and a worker blocked that long misses vitest's RPC deadline.
    const images = await buildImagesAsync();
    timings.imagesMs = Date.now() - t0;
    httpbinImage = images.httpbin.ref;
    const t1 = Date.now();
    cluster = await startRealCluster({ binDir: inject('k8sBinDir'), nodeDir: inject('nodeDir') });
    timings.clusterMs = Date.now() - t1;
    const t2 = Date.now();
    await cluster.importImage(images.kueuer.archive);
    await cluster.importImage(images.httpbin.archive);
    timings.importMs = Date.now() - t2;
    install = await installKueuer(cluster, { image: images.kueuer.ref, amqpUrl: inject('amqpUrl'), config: { KUEUER_AUTOSCALING_POLL_INTERVAL: '1s' } });
    timings.installMs = install.installMs;
    for (const app of ['kueuer-webhook', 'kueuer-responder']) {
      for (const p of getJson('pods', '-n', 'kueuer-system').items as KubeJson[]) {
        if (!(p.metadata.name as string).startsWith(app)) continue;
        const ready = (p.status.conditions as KubeJson[]).find((c) => c.type === 'Ready');
        podStarts.push({
          pod: `kueuer-system/${p.metadata.name as string}`,
          seconds: (Date.parse(ready!.lastTransitionTime as string) - Date.parse(p.metadata.creationTimestamp as string)) / 1000,
        });
      }
    }
    ok(cluster.controlPlane.apply(`apiVersion: v1\nkind: Namespace\nmetadata: {name: ${NS}, labels: {kueuer.io/injection: enabled}}\n`), 'namespace');
    install.createBackendSecret(NS);
    ok(
      cluster.controlPlane.apply(
        httpbinDeployment('web', httpbinImage, {
          replicas: 2,
          annotations: { 'kueuer.io/autoscale': 'false' },
          podAnnotations: { 'kueuer.io/concurrency': '8' },
        }),
      ),
      'web',
    );
    await waitReady('web', 2);
    recordPodStarts('web');
  }, 20 * 60_000);

  afterAll(async () => {
    timings.totalMs = Date.now() - started;
    writeResults();
    await install?.close();
    await cluster?.stop();
  }, 3 * 60_000);

  it('injects the native sidecar, rewrites the Service, and answers through the ClusterIP exactly as the app does', async () => {
    for (const p of pods('web')) {
      const sidecar = (p.spec.initContainers as KubeJson[]).find((c) => c.name === 'kueuer-sidecar');
      expect(sidecar?.restartPolicy).toBe('Always');
      const status = (p.status.initContainerStatuses as KubeJson[]).find((c) => c.name === 'kueuer-sidecar');
      expect(status?.started).toBe(true);
      expect(status?.ready).toBe(true);
      expect(status?.state?.running).toBeTruthy();
      expect(JSON.parse(p.metadata.annotations['kueuer.io/status'] as string)).toMatchObject({ mode: 'native', queue: `${NS}.web` });
    }
    const svc = getJson('service', 'web', '-n', NS);
    expect(svc.spec.selector).toBeUndefined();
    const port = Number(svc.metadata.annotations['kueuer.io/responder-port']);
    expect(svc.spec.ports[0].targetPort).toBe(port);
    const responders = (getJson('pods', '-n', 'kueuer-system', '-l', 'app.kubernetes.io/component=responder').items as KubeJson[]).map(
      (p) => p.status.podIP as string,
    );
    const slice = await waitFor('the EndpointSlice kueuer-web to list the responders', 30_000, () => {
      const s = cluster.controlPlane.tryGetJson('endpointslice', 'kueuer-web', '-n', NS);
      const ips = ((s?.endpoints as KubeJson[] | undefined) ?? []).flatMap((e) => e.addresses as string[]).sort();
      return ips.join() === [...responders].sort().join() ? s : undefined;
    });
    expect(slice.ports[0].port).toBe(port);

    // The same requests to the app at its pod IP and to the Service ClusterIP.
    const direct = `http://${pods('web')[0]!.status.podIP as string}:8080`;
    const queued = serviceUrl('web');
    const targets = [
      '/json',
      '/html',
      '/xml',
      '/robots.txt',
      '/encoding/utf8',
      '/bytes/4096?seed=7',
      '/base64/S3VldWVyIG9uIGEgcmVhbCBub2Rl',
      '/status/418',
      '/status/201',
      '/status/204',
      '/status/503',
      '/response-headers?X-Twice=a&X-Twice=b&Content-Type=text/x-test',
      '/cookies/set?a=1',
      '/redirect-to?url=/somewhere&status_code=307',
      '/image/png',
      '/deny',
    ];
    // Headers that differ per connection or per hop (Date, Connection, Keep-Alive) or that Kueuer adds; and the
    // framing: Kueuer answers with the whole body, so where the app streamed it (chunked) it says Content-Length
    // instead (the body bytes are compared below).
    const comparable = (h: Answer['headers'], chunkedDirect: boolean) =>
      Object.fromEntries(
        Object.entries(h).filter(
          ([k]) =>
            !['date', 'connection', 'keep-alive', 'transfer-encoding'].includes(k) && !k.startsWith('x-kueuer-') && !(chunkedDirect && k === 'content-length'),
        ),
      );
    let compared = 0;
    const chunkedTargets: string[] = [];
    for (const target of targets) {
      const a = await request(direct + target);
      const b = await request(queued + target);
      expect(a.error, target).toBeUndefined();
      expect(b.error, target).toBeUndefined();
      const chunked = a.headers['transfer-encoding'] === 'chunked';
      if (chunked) chunkedTargets.push(target);
      expect({ target, status: b.status, headers: comparable(b.headers, chunked) }).toEqual({
        target,
        status: a.status,
        headers: comparable(a.headers, chunked),
      });
      expect(b.body.equals(a.body), `${target}: body bytes`).toBe(true);
      compared++;
    }
    const post = await request(`${queued}/anything?i=1`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body: Buffer.from([0, 1, 2, 255]),
    });
    expect(post.status).toBe(200);
    expect(JSON.parse(post.body.toString()) as unknown).toMatchObject({
      method: 'POST',
      args: { i: ['1'] },
      data: 'data:application/octet-stream;base64,AAEC_w==' /* go-httpbin: URL-safe base64 */,
    });
    rows.push({
      scenario: 'serve through the ClusterIP, compared with the app at its pod IP',
      requests: compared * 2 + 1,
      lost: 0,
      detail: `${compared} targets: same status, headers and body bytes (Content-Length where the app sent chunked: ${chunkedTargets.join(' ') || 'none'})`,
    });
  }, 60_000);

  it('loses no request while an app pod is deleted (normal grace period)', async () => {
    const victim = pods('web')[0]!.metadata.name as string;
    const answers = await loadWithDisruption('web', () => ok(kubectl('delete', 'pod', victim, '-n', NS, '--wait=false'), 'delete pod'));
    const s = summarize(answers);
    record(`300 requests, app pod ${victim} deleted after 50 answers`, s);
    expect(s.failures).toEqual({});
    expect(s.sent).toBe(300);
    await waitReady('web', 2);
    recordPodStarts('web');
  }, 180_000);

  it('loses no request while a sidecar container is killed (crictl stop -t 0)', async () => {
    const pod = pods('web')[0]!;
    const containerId = ((pod.status.initContainerStatuses as KubeJson[]).find((c) => c.name === 'kueuer-sidecar')!.containerID as string).replace(
      /^.*:\/\//,
      '',
    );
    const answers = await loadWithDisruption('web', () => cluster.crictl(['stop', '--timeout', '0', containerId]));
    const s = summarize(answers);
    const restarts = await waitFor('the killed sidecar to restart', 60_000, () => {
      const p = getJson('pod', pod.metadata.name as string, '-n', NS);
      const st = (p.status.initContainerStatuses as KubeJson[]).find((c) => c.name === 'kueuer-sidecar');
      return (st?.restartCount as number) >= 1 && st?.ready ? (st.restartCount as number) : undefined;
    });
    record(`300 requests, sidecar of ${pod.metadata.name as string} killed after 50 answers`, s, `sidecar restarted (restartCount ${restarts})`);
    expect(s.failures).toEqual({});
  }, 180_000);

  it('loses no request during a rolling update of the app Deployment', async () => {
    const before = pods('web').map((p) => p.metadata.name as string);
    const rolled = (async () => {
      await sleep(500);
      ok(kubectl('rollout', 'restart', 'deployment/web', '-n', NS), 'rollout restart');
      const status = await kubectlAsync('rollout', 'status', 'deployment/web', '-n', NS, '--timeout=150s');
      if (status.code !== 0) throw new Error(`rollout status: ${status.out}`);
    })();
    const base = serviceUrl('web');
    const answers = await load({ count: 300, concurrency: 10, url: (i) => `${base}/delay/0.05?i=${i}`, until: rolled.catch(() => undefined) });
    await rolled;
    await waitReady('web', 2);
    expect(pods('web').some((p) => before.includes(p.metadata.name as string))).toBe(false);
    const s = summarize(answers);
    record('rolling update of the app Deployment (2 pods replaced) under load', s);
    recordPodStarts('web');
    expect(s.failures).toEqual({});
  }, 240_000);

  it('rolling restart of the responder Deployment under load: what clients see', async () => {
    const before = responderPods();
    const url = serviceUrl('web');
    const rolled = (async () => {
      await sleep(500);
      ok(kubectl('rollout', 'restart', 'deployment/kueuer-responder', '-n', 'kueuer-system'), 'rollout restart responder');
      await sleep(200);
      const status = await kubectlAsync('rollout', 'status', 'deployment/kueuer-responder', '-n', 'kueuer-system', '--timeout=150s');
      if (status.code !== 0) throw new Error(`rollout status: ${status.out}`);
    })();
    const answers = await load({ count: 300, concurrency: 10, url: (i) => `${url}/delay/0.05?i=${i}`, until: rolled.catch(() => undefined) });
    await rolled;
    const after = responderPods();
    const s = summarize(answers);
    record('rolling restart of the responder Deployment (2 pods replaced) under load', s);
    expect(after.some((n) => before.includes(n))).toBe(false);
    expect(s.failures).toEqual({});
  }, 240_000);

  it('scales the Deployment up on backlog through the generated HPA, new pods consume, and back down after draining', async () => {
    ok(
      cluster.controlPlane.apply(
        httpbinDeployment('worker', httpbinImage, {
          replicas: 1,
          annotations: {
            'kueuer.io/min-replicas': '1',
            'kueuer.io/max-replicas': '3',
            'kueuer.io/target-backlog': '2',
            'kueuer.io/scale-down-stabilization': '5s',
          },
        }),
      ),
      'worker',
    );
    await waitReady('worker', 1);
    await waitFor('the HPA kueuer-deploy-worker', 30_000, () => cluster.controlPlane.tryGetJson('hpa', 'kueuer-deploy-worker', '-n', NS));
    const url = serviceUrl('worker');
    const t0 = Date.now();
    let scaledAt = 0;
    const watching = (async () => {
      await waitFor(
        'worker to reach 3 ready replicas',
        120_000,
        () => readyPods('worker').length === 3,
        () =>
          kubectl('describe', 'hpa', 'kueuer-deploy-worker', '-n', NS).stdout +
          kubectl('logs', '-n', 'kueuer-system', 'deployment/kueuer-webhook', '--tail=40').stdout,
      );
      scaledAt = Date.now();
    })();
    // 30 requests of 1 s each with one request per pod at a time: a backlog of ~29 for one pod.
    const answers = await load({ count: 30, concurrency: 30, url: (i) => `${url}/delay/1?i=${i}` });
    await watching;
    const s = summarize(answers);
    expect(s.failures).toEqual({});
    // Every pod's sidecar took requests: read each one's kueuer_sidecar_requests_total.
    const perPod: Record<string, number> = {};
    for (const p of readyPods('worker')) {
      const metrics = await request(`http://${p.status.podIP as string}:9091/metrics`);
      perPod[p.metadata.name as string] = [...metrics.body.toString().matchAll(/^kueuer_sidecar_requests_total\{[^}]*\} (\d+)/gm)].reduce(
        (n, m) => n + Number(m[1]),
        0,
      );
    }
    recordPodStarts('worker');
    const t1 = Date.now();
    await waitScaledTo('worker', 1, 120_000);
    const downMs = Date.now() - t1;
    record(
      'backlog → HPA scale-up (1 → 3) → drain → scale-down',
      s,
      `3 ready ${((scaledAt - t0) / 1000).toFixed(1)} s after the first request; answered per pod ${JSON.stringify(Object.values(perPod))}; back to 1 ${(downMs / 1000).toFixed(1)} s after the last answer`,
    );
    expect(Object.values(perPod).filter((n) => n > 0)).toHaveLength(3);
  }, 300_000);

  it('scales a min-replicas 0 Deployment to zero, and a queued request wakes it and is answered', async () => {
    ok(
      cluster.controlPlane.apply(
        httpbinDeployment('sleepy', httpbinImage, {
          replicas: 1,
          annotations: { 'kueuer.io/min-replicas': '0', 'kueuer.io/idle-cooldown': '3s', 'kueuer.io/scale-down-stabilization': '5s' },
        }),
      ),
      'sleepy',
    );
    // No wait for Ready: with a 3 s cooldown and nothing queued it may go to 0 before its pod is ready.
    const t0 = Date.now();
    await waitScaledTo('sleepy', 0, 90_000);
    const toZeroMs = Date.now() - t0;
    // Not even a terminating pod left that could still answer: the request must wake the Deployment.
    await waitFor('no sleepy pod at all', 60_000, () => (getJson('pods', '-n', NS, '-l', 'app=sleepy').items as KubeJson[]).length === 0);
    const answer = await request(`${serviceUrl('sleepy')}/get?i=0`);
    expect(answer.error).toBeUndefined();
    expect(answer.status).toBe(200);
    expect(getJson('deployment', 'sleepy', '-n', NS).spec.replicas).toBe(1);
    recordPodStarts('sleepy');
    rows.push({
      scenario: 'scale to zero (min-replicas 0, idle-cooldown 3s), then one request wakes it',
      requests: 1,
      lost: 0,
      detail: `0 replicas ${(toZeroMs / 1000).toFixed(1)} s after the Deployment was created; the waking request answered in ${(answer.ms / 1000).toFixed(1)} s`,
    });
  }, 240_000);

  for (const mode of ['native', 'classic'] as const) {
    it(`${mode} sidecar: in-flight requests finish on pod deletion, and the app gets SIGTERM only after the sidecar stopped taking work`, async () => {
      const name = `order-${mode}`;
      ok(
        cluster.controlPlane.apply(
          httpbinDeployment(name, httpbinImage, {
            replicas: 1,
            annotations: { 'kueuer.io/autoscale': 'false' },
            podAnnotations: { 'kueuer.io/concurrency': '4', 'kueuer.io/native-sidecar': String(mode === 'native') },
          }),
        ),
        name,
      );
      await waitReady(name, 1);
      const pod = pods(name)[0]!;
      const podName = pod.metadata.name as string;
      expect(JSON.parse(pod.metadata.annotations['kueuer.io/status'] as string)).toMatchObject({ mode });
      // Follow both containers' logs (kubectl logs -f, timestamps from the kubelet) until they exit.
      const follow = async (container: string) => (await kubectlAsync('logs', '-f', '--timestamps', podName, '-n', NS, '-c', container)).out;
      const appLog = follow('app');
      const sidecarLog = follow('kueuer-sidecar');
      await sleep(500);
      const url = serviceUrl(name);
      // Four 3 s requests in flight (concurrency 4), then the delete.
      const inFlight = Promise.all([0, 1, 2, 3].map(async (i) => ({ i, ...(await request(`${url}/delay/3?i=${i}`)) })));
      await sleep(1000);
      ok(kubectl('delete', 'pod', podName, '-n', NS, '--wait=false'), 'delete pod');
      const answers = await inFlight;
      const s = summarize(answers);
      const [app, sidecar] = await Promise.all([appLog, sidecarLog]);
      const stamp = (log: string, pattern: RegExp): number => {
        const line = log.split('\n').find((l) => pattern.test(l));
        return line ? Date.parse(line.split(' ')[0]!) : NaN;
      };
      const appSigterm = stamp(app, /shutting down/);
      const sidecarDraining = stamp(sidecar, /"msg":"draining"/);
      record(
        `${mode} sidecar: 4 in-flight 3 s requests, pod deleted`,
        s,
        `sidecar "draining" ${Number.isNaN(sidecarDraining) ? 'not logged' : new Date(sidecarDraining).toISOString()}, app "shutting down" (SIGTERM) ${Number.isNaN(appSigterm) ? 'not logged' : new Date(appSigterm).toISOString()}`,
      );
      expect(s.failures).toEqual({});
      expect(appSigterm).toBeGreaterThan(0);
      expect(sidecarDraining).toBeGreaterThan(0);
      expect(sidecarDraining).toBeLessThanOrEqual(appSigterm);
      ok(kubectl('delete', 'deployment', name, '-n', NS, '--wait=false'), 'delete deployment');
    }, 120_000);
  }

  it('with the webhook down, opted-in pods are refused and other pods admitted (failurePolicy Fail, objectSelector)', async () => {
    ok(kubectl('scale', 'deployment/kueuer-webhook', '-n', 'kueuer-system', '--replicas=0'), 'scale webhook to 0');
    await waitFor(
      'no webhook pods',
      90_000,
      () => (getJson('pods', '-n', 'kueuer-system', '-l', 'app.kubernetes.io/component=webhook').items as KubeJson[]).length === 0,
    );
    const bare = (name: string, labels: Record<string, string>) => `
apiVersion: v1
kind: Pod
metadata: {name: ${name}, namespace: ${NS}, labels: ${JSON.stringify({ app: name, ...labels })}}
spec:
  containers: [{name: app, image: ${httpbinImage}, ports: [{name: http, containerPort: 8080}]}]
`;
    const refused = cluster.controlPlane.apply(bare('opted-in', { 'kueuer.io/inject': 'true' }));
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('pods.kueuer.io');
    const admitted = cluster.controlPlane.apply(bare('plain', {}));
    expect(admitted.stderr).toBe('');
    await waitReady('plain', 1).catch(() => undefined);
    const plain = getJson('pod', 'plain', '-n', NS);
    expect(plain.spec.initContainers).toBeUndefined();
    expect(plain.status.phase).toBe('Running');
    rows.push({
      scenario: 'webhook scaled to 0',
      requests: 0,
      lost: 0,
      detail: `opted-in pod refused: "${refused.stderr.trim().split('\n')[0]}"; unlabelled pod admitted and Running`,
    });
    ok(kubectl('delete', 'pod', 'plain', '-n', NS, '--wait=false'), 'delete plain');
    ok(kubectl('scale', 'deployment/kueuer-webhook', '-n', 'kueuer-system', '--replicas=2'), 'scale webhook to 2');
    ok(kubectl('rollout', 'status', 'deployment/kueuer-webhook', '-n', 'kueuer-system', '--timeout=90s'), 'webhook back');
  }, 240_000);

  it('uninstall as documented restores every rewritten Service, which then serves its pods directly', async () => {
    const queued = ['web', 'worker', 'sleepy'];
    // docs/operations.md, "Uninstall": scripts/uninstall.sh with the kustomization that was installed.
    const t0 = Date.now();
    const result = await install.runScript('scripts/uninstall.sh', ['--yes', install.kustomizeDir]);
    expect(result.code, result.output).toBe(0);
    const uninstallMs = Date.now() - t0;
    for (const name of queued) {
      const svc = getJson('service', name, '-n', NS);
      expect(svc.spec.selector, name).toEqual({ app: name });
      expect(svc.spec.ports[0].targetPort, name).toBe('http');
      expect(svc.metadata.annotations?.['kueuer.io/original-service'], name).toBeUndefined();
    }
    expect(cluster.controlPlane.tryGetJson('namespace', 'kueuer-system')?.status?.phase ?? 'gone').not.toBe('Active');
    // web still has pods (with their sidecars, now idle): the ClusterIP reaches the app directly.
    const base = serviceUrl('web');
    const answers = await load({ count: 20, concurrency: 4, url: (i) => `${base}/get?i=${i}` });
    const s = summarize(answers);
    expect(s.failures).toEqual({});
    for (const a of answers) expect(a.headers['x-kueuer-request-id']).toBeUndefined();
    record(
      'after scripts/uninstall.sh: requests to the restored Service web',
      s,
      `uninstall took ${(uninstallMs / 1000).toFixed(1)} s; ${queued.length} Services restored`,
    );
  }, 240_000);

  function writeResults(): void {
    const table = [
      '| scenario | requests | lost | detail |',
      '|---|---|---|---|',
      ...rows.map((r) => `| ${r.scenario} | ${r.requests} | ${r.lost} | ${r.detail.replaceAll('|', '\\|')} |`),
      '',
      '| pod | created → Ready (s) |',
      '|---|---|',
      ...podStarts.map((p) => `| ${p.pod} | ${p.seconds} |`),
      '',
      `Timings: images ${ms(timings.imagesMs)}, cluster start ${ms(timings.clusterMs)}, image import ${ms(timings.importMs)}, scripts/install.sh ${ms(timings.installMs)}, whole file ${ms(timings.totalMs)}.`,
    ].join('\n');
    const dir = join(root, '.cache', 'real-node');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'results.md'), `${table}\n`);
    // A run that never got to a scenario (the cluster did not start) leaves the report as it was.
    const report = process.env.KUEUER_REAL_NODE_REPORT;
    if (report && rows.length > 0) {
      const file = join(root, report);
      const text = readFileSync(file, 'utf8');
      const begin = '<!-- results:begin -->';
      const end = '<!-- results:end -->';
      const a = text.indexOf(begin);
      const b = text.indexOf(end);
      if (a >= 0 && b > a) writeFileSync(file, `${text.slice(0, a + begin.length)}\n${table}\n${text.slice(b)}`);
    }
  }
});

const ms = (v: number | undefined) => (v === undefined ? 'n/a' : `${(v / 1000).toFixed(1)} s`);
