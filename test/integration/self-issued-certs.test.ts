/**
 * Against a real kube-apiserver (issue 14, item 4): `kubectl apply -k
 * manifests/` alone works. The base's RBAC, webhook configuration and
 * APIService are applied as rendered (empty caBundles); the webhook runs as
 * its ServiceAccount with --cert-source self, issues its CA and serving
 * certificate into the Secret kueuer-system/kueuer-webhook-tls, fills both
 * caBundles, and the apiserver then calls it through the Service: an
 * opted-in pod is admitted and mutated, the APIService becomes Available. A
 * second replica adopts the same certificate. With lifetimes of seconds,
 * serving certificates and the CA rotate while pods are created without one
 * failed admission. Last, scripts/install.sh keeps a broker Secret the user
 * created instead of replacing it with a placeholder (the rabbitmq component's,
 * or backend-secret.example.yaml's stringData), and leaves out nothing else.
 */
import { X509Certificate } from 'node:crypto';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import tls from 'node:tls';
import { CoreV1Api, dumpYaml, KubeConfig, loadAllYaml } from '@kubernetes/client-node';
import { readCertSecret, WriteConflict, writeCertSecret } from '../../webhook/certs/cert-secret.js';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startControlPlane, type ControlPlane, type KubeJson } from '../helpers/control-plane.js';
import { hostAddress, localEndpointSlice } from '../helpers/local-endpoint.js';
import { freePort } from '../helpers/net.js';
import { msgIs, runKueuer, spawnKueuer, type KueuerProcess } from '../helpers/processes.js';
import { waitFor } from '../helpers/stack.js';

const root = join(import.meta.dirname, '..', '..');
const SERVICE_NAME = 'kueuer-webhook.kueuer-system.svc';

/** The certificates in a base64 caBundle (or a Secret's base64 ca.crt), by SHA-256 fingerprint. */
function fingerprints(base64: string | undefined): string[] {
  const pem = Buffer.from(base64 ?? '', 'base64').toString('utf8');
  return (pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map((c) => new X509Certificate(c).fingerprint256);
}

/** The certificate a TLS server presents for the webhook Service's name. */
function servedCertificate(host: string, port: number): Promise<{ fingerprint: string }> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host, port, servername: SERVICE_NAME, rejectUnauthorized: false }, () => {
      const cert = socket.getPeerCertificate();
      socket.end();
      resolve({ fingerprint: cert.fingerprint256 });
    });
    socket.on('error', reject);
  });
}

describe('self-issued webhook certificates, through a real kube-apiserver', () => {
  let cp: ControlPlane;
  let asWebhook = '';
  const address = hostAddress();
  let port = 0;
  const webhooks: KueuerProcess[] = [];

  const caBundles = (): { webhooks: string[][]; apiService: string[] } => {
    const config = cp.getJson('mutatingwebhookconfiguration', 'kueuer');
    const apiService = cp.getJson('apiservice', 'v1beta1.external.metrics.k8s.io');
    return {
      webhooks: (config.webhooks as KubeJson[]).map((w) => fingerprints(w.clientConfig.caBundle as string)),
      apiService: fingerprints(apiService.spec.caBundle as string),
    };
  };
  const secret = (): KubeJson => cp.getJson('secret', 'kueuer-webhook-tls', '-n', 'kueuer-system');

  const startWebhook = async (listenPort: number, extra: string[] = []): Promise<KueuerProcess> => {
    const webhook = spawnKueuer(
      [
        'webhook',
        '--cert-source',
        'self',
        '--cert-dir',
        mkdtempSync(join(tmpdir(), 'kueuer-issued-')),
        '--listen',
        `${address}:${listenPort}`,
        '--sidecar-image',
        'ghcr.io/kueuer/kueuer:e2e',
        ...extra,
      ],
      { KUBECONFIG: asWebhook },
    );
    webhooks.push(webhook);
    await webhook.waitForLog(msgIs('webhook ready'), 60_000);
    return webhook;
  };
  const stopWebhooks = async () => {
    for (const w of webhooks.splice(0)) {
      w.child.kill('SIGTERM');
      const killed = setTimeout(() => w.child.kill('SIGKILL'), 10_000);
      await w.exited;
      clearTimeout(killed);
    }
  };

  let podCount = 0;
  /** Creates an opted-in pod; returns kubectl's result and the stored pod's container names. */
  const createPod = () => {
    const r = cp.kubectl(
      ['create', '-o', 'json', '-f', '-'],
      dumpYaml({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: `web-${++podCount}`, namespace: 'shop', labels: { app: 'web', 'kueuer.io/inject': 'true' } },
        spec: { containers: [{ name: 'app', image: 'example.com/web:1', ports: [{ containerPort: 8080 }] }] },
      }),
    );
    const pod = r.code === 0 ? (JSON.parse(r.stdout) as KubeJson) : null;
    const names = pod
      ? [...((pod.spec.initContainers as KubeJson[] | undefined) ?? []), ...(pod.spec.containers as KubeJson[])].map((c) => c.name as string)
      : [];
    return { ...r, names };
  };

  beforeAll(async () => {
    cp = await startControlPlane(inject('k8sBinDir'));
    port = await freePort();
    // The base as `kubectl apply -k manifests/` renders it, but the Deployments (no kubelet here: the webhook runs on this machine).
    const rendered = cp.kubectl(['kustomize', join(root, 'manifests')]);
    expect(rendered.stderr).toBe('');
    const objects = (loadAllYaml(rendered.stdout) as KubeJson[]).filter((o) => o.kind !== 'Deployment');
    const config = objects.find((o) => o.kind === 'MutatingWebhookConfiguration')!;
    expect(config.webhooks.map((w: KubeJson) => w.clientConfig.caBundle)).toEqual(['', '']);
    const applied = cp.apply(objects.map((o) => dumpYaml(o)).join('---\n'));
    expect(applied.stderr).toBe('');
    // The Service's endpoint is this machine (the endpoint controller is not running in the test cluster).
    const endpoints = cp.apply(
      [
        localEndpointSlice({ namespace: 'kueuer-system', name: 'kueuer-webhook', portName: 'https' }, address, port),
        { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop', labels: { 'kueuer.io/injection': 'enabled' } } },
      ]
        .map((o) => dumpYaml(o))
        .join('---\n'),
    );
    expect(endpoints.stderr).toBe('');
    asWebhook = cp.kubeconfigAs('kueuer-system', 'kueuer-webhook');
  }, 5 * 60_000);

  afterAll(async () => {
    await stopWebhooks();
    await cp?.stop();
  }, 60_000);

  it('refuses --cert-source secret without the files, naming the flags and --cert-source self', async () => {
    const r = await runKueuer(['webhook', '--cert-source', 'secret', '--listen', `127.0.0.1:${await freePort()}`], { KUBECONFIG: asWebhook });
    expect(r.code).toBe(2);
    expect(r.stdout + r.stderr).toContain('--cert-source secret (KUEUER_CERT_SOURCE) needs --tls-cert and --tls-key');
    expect(r.stdout + r.stderr).toContain('--cert-source self');
  });

  it('before the webhook runs, an opted-in pod is refused (empty caBundle, failurePolicy Fail)', () => {
    const r = createPod();
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('pods.kueuer.io');
  });

  it('issues its certificate as its ServiceAccount, fills both caBundles before Ready, and the apiserver calls it', async () => {
    const started = Date.now();
    await startWebhook(port);
    const readyMs = Date.now() - started;
    const stored = secret();
    expect(stored.type).toBe('Opaque');
    expect(Object.keys(stored.data as object).sort()).toEqual(['ca-signer.crt', 'ca.crt', 'ca.key', 'tls.crt', 'tls.key']);
    const ca = new X509Certificate(Buffer.from(stored.data['ca.crt'] as string, 'base64'));
    const serving = new X509Certificate(Buffer.from(stored.data['tls.crt'] as string, 'base64'));
    expect(ca.ca).toBe(true);
    expect(serving.checkIssued(ca)).toBe(true);
    expect(serving.checkHost(SERVICE_NAME)).toBe(SERVICE_NAME);
    // The default lifetime is 90 days.
    const days = (serving.validToDate.getTime() - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(89.9);
    expect(days).toBeLessThan(90.1);
    // Ready came after the caBundles were filled: they hold the CA now.
    const bundles = caBundles();
    expect(bundles.webhooks).toEqual([[ca.fingerprint256], [ca.fingerprint256]]);
    expect(bundles.apiService).toEqual([ca.fingerprint256]);
    expect((await servedCertificate(address, port)).fingerprint).toBe(serving.fingerprint256);
    // The apiserver verifies the webhook with that CA: an opted-in pod is admitted with its sidecar.
    const pod = createPod();
    expect(pod.stderr).toBe('');
    expect(pod.names).toEqual(['kueuer-sidecar', 'app']);
    // So does the aggregation layer for the external metrics API.
    await waitFor(
      () =>
        cp.tryGetJson('apiservice', 'v1beta1.external.metrics.k8s.io')?.status?.conditions?.find((c: KubeJson) => c.type === 'Available')?.status === 'True',
      60_000,
      'the APIService to be available',
    );
    console.log(`self-issued certificates: webhook ready ${readyMs} ms after start`);
  }, 120_000);

  it('a second replica adopts the stored certificate instead of issuing another', async () => {
    const before = secret();
    const second = await freePort();
    await startWebhook(second);
    const after = secret();
    expect(after.metadata.resourceVersion).toBe(before.metadata.resourceVersion);
    const [a, b] = [await servedCertificate(address, port), await servedCertificate(address, second)];
    expect(b.fingerprint).toBe(a.fingerprint);
  }, 120_000);

  it('rotates serving certificates and the CA before they expire, with no failed admission', async () => {
    await stopWebhooks();
    // Lifetimes of seconds: serving certificates renew every ~6 s (a renewed one is served within ~1.5 s,
    // of the ~3.5 s its predecessor has left), the CA every ~19 s.
    await startWebhook(port, ['--cert-lifetime', '10s', '--ca-lifetime', '30s', '--cert-check-interval', '300ms']);
    const served = new Set<string>();
    const cas = new Set<string>();
    let mostCasInBundle = 0;
    const failures: string[] = [];
    let admitted = 0;
    const until = Date.now() + 40_000;
    while (Date.now() < until) {
      const pod = createPod();
      if (pod.code !== 0 || pod.names[0] !== 'kueuer-sidecar') failures.push(pod.stderr || pod.names.join(','));
      else admitted++;
      served.add((await servedCertificate(address, port)).fingerprint);
      const bundles = caBundles();
      for (const f of bundles.webhooks[0]!) cas.add(f);
      mostCasInBundle = Math.max(mostCasInBundle, bundles.webhooks[0]!.length);
      if (process.env.KUEUER_TEST_DEBUG) console.log(Date.now() - until, admitted, failures.length, served.size, cas.size);
      await new Promise((r) => setTimeout(r, 200));
    }
    console.log(`rotation: ${admitted} pods admitted, ${failures.length} failed, ${served.size} serving certificates, ${cas.size} CAs`);
    expect(failures).toEqual([]);
    expect(admitted).toBeGreaterThan(10);
    expect(served.size).toBeGreaterThanOrEqual(4);
    expect(cas.size).toBeGreaterThanOrEqual(2);
    // During a CA rotation the old CA stays in the bundle beside the new one (older ones too, until they expire).
    expect(mostCasInBundle).toBeGreaterThanOrEqual(2);
    // The APIService follows the same bundle (written just after the webhook configuration).
    await waitFor(() => JSON.stringify(caBundles().apiService) === JSON.stringify(caBundles().webhooks[0]), 5000, 'the APIService to carry the same CA bundle');
  }, 120_000);

  it('two replicas starting at once with no Secret serve one certificate; a write from a stale read is refused (409), never applied', async () => {
    await stopWebhooks();
    expect(cp.kubectl(['-n', 'kueuer-system', 'delete', 'secret', 'kueuer-webhook-tls', '--ignore-not-found']).code).toBe(0);
    const other = await freePort();
    const [a, b] = await Promise.all([startWebhook(port), startWebhook(other)]);
    const issued = [a, b].flatMap((w) => w.logs.filter((l) => l.msg === 'issued webhook certificates'));
    const adopted = [a, b].flatMap((w) => w.logs.filter((l) => l.msg === 'another replica wrote the certificates first; adopting them'));
    console.log(`simultaneous start: ${issued.length} issued, ${adopted.length} adopted`);
    const served = [await servedCertificate(address, port), await servedCertificate(address, other)];
    expect(served[1]!.fingerprint).toBe(served[0]!.fingerprint);
    const stored = new X509Certificate(Buffer.from(secret().data['tls.crt'] as string, 'base64'));
    expect(served[0]!.fingerprint).toBe(stored.fingerprint256);
    expect(caBundles().webhooks[0]).toEqual(fingerprints(secret().data['ca.crt'] as string));
    // The loser's path, as the webhook's ServiceAccount: a create of an existing Secret, and a replace from a stale read.
    const kc = new KubeConfig();
    kc.loadFromFile(asWebhook);
    const core = kc.makeApiClient(CoreV1Api);
    const ref = { namespace: 'kueuer-system', name: 'kueuer-webhook-tls' };
    const read = await readCertSecret(core, ref);
    expect(read.stored).not.toBeNull();
    await expect(writeCertSecret(core, ref, { stored: null }, read.stored!)).rejects.toBeInstanceOf(WriteConflict);
    // A write that changes something (an unchanged write keeps the resourceVersion), then one from the same, now stale, read.
    const changed = { ...read.stored!, bundle: [...read.stored!.bundle, read.stored!.ca.cert] };
    await writeCertSecret(core, ref, read, changed);
    await expect(writeCertSecret(core, ref, read, read.stored!)).rejects.toBeInstanceOf(WriteConflict);
    expect(fingerprints(secret().data['ca.crt'] as string)).toHaveLength(2); // the stale write was not applied
    await writeCertSecret(core, ref, await readCertSecret(core, ref), read.stored!);
  }, 120_000);

  /** scripts/install.sh KUSTOMIZE_DIR as a user runs it on this cluster, not waiting for the rollout (no kubelet here). */
  const runInstall = (dir: string) =>
    new Promise<{ code: number; output: string }>((resolve) => {
      execFile(
        'bash',
        [join(root, 'scripts', 'install.sh'), dir],
        { env: { ...process.env, KUBECONFIG: cp.kubeconfig, PATH: `${cp.binDir}:${process.env.PATH}`, KUEUER_INSTALL_WAIT: 'false' } },
        (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, output: stdout + stderr }),
      );
    });
  /** The Secret kueuer-system/kueuer-backend created as README's step 1 says, holding `url`. */
  const createBrokerSecret = (url: string) => {
    expect(cp.kubectl(['-n', 'kueuer-system', 'delete', 'secret', 'kueuer-backend', '--ignore-not-found']).code).toBe(0);
    expect(cp.kubectl(['-n', 'kueuer-system', 'create', 'secret', 'generic', 'kueuer-backend', `--from-literal=KUEUER_BACKEND=${url}`]).code).toBe(0);
  };
  /** The decoded KUEUER_BACKEND of the Secret kueuer-backend in `namespace`. */
  const brokerUrl = (namespace: string) =>
    Buffer.from(cp.getJson('secret', 'kueuer-backend', '-n', namespace).data.KUEUER_BACKEND as string, 'base64').toString();
  /** A kustomization of the base with `components` and the files `resources` (name: YAML), in a temp dir. */
  const kustomization = (components: string[], resources: Record<string, string>) => {
    const dir = mkdtempSync(join(tmpdir(), 'kueuer-kustomization-'));
    const fromDir = (path: string) => relative(dir, join(root, 'manifests', path));
    for (const [name, yaml] of Object.entries(resources)) writeFileSync(join(dir, name), yaml);
    const text = dumpYaml({ resources: [fromDir('base'), ...Object.keys(resources)], components: components.map((c) => fromDir(`components/${c}`)) });
    writeFileSync(join(dir, 'kustomization.yaml'), text);
    return dir;
  };

  it('scripts/install.sh keeps the broker Secret created in step 1 instead of the rabbitmq placeholder', async () => {
    await stopWebhooks();
    const url = 'amqp://app:s3cret@rabbitmq.queues.svc:5672';
    createBrokerSecret(url);
    const result = await runInstall(join(root, 'manifests', 'overlays', 'rabbitmq'));
    expect(result.output).toContain('Keeping the existing Secret kueuer-system/kueuer-backend');
    expect(result.code).toBe(0);
    expect(brokerUrl('kueuer-system')).toBe(url);
    // The rest was applied: the webhook serves install.sh's certificates, whose CA is now in the caBundles.
    expect(cp.getJson('configmap', 'kueuer-config', '-n', 'kueuer-system').data.KUEUER_CERT_SOURCE).toBe('secret');
    const installed = cp.getJson('secret', 'kueuer-webhook-tls', '-n', 'kueuer-system');
    const installedCa = [new X509Certificate(Buffer.from(installed.data['ca.crt'] as string, 'base64')).fingerprint256];
    expect(caBundles()).toEqual({ webhooks: [installedCa, installedCa], apiService: installedCa });

    // Run again (docs/operations.md, "Upgrade"): the certificate the webhook serves is kept, so the caBundle never names a CA the pods do not serve yet.
    const again = await runInstall(join(root, 'manifests', 'overlays', 'rabbitmq'));
    expect(again.code).toBe(0);
    expect(again.output).toContain('Reusing the webhook certificate of the Secret kueuer-system/kueuer-webhook-tls');
    const after = cp.getJson('secret', 'kueuer-webhook-tls', '-n', 'kueuer-system');
    expect(after.data).toEqual(installed.data);
  }, 120_000);

  it('scripts/install.sh keeps the broker Secret when the placeholder is backend-secret.example.yaml as it is (stringData)', async () => {
    await stopWebhooks();
    const url = 'amqp://app:other-s3cret@rabbitmq.queues.svc:5672';
    createBrokerSecret(url);
    const example = readFileSync(join(root, 'manifests', 'base', 'backend-secret.example.yaml'), 'utf8');
    expect(example).toContain('stringData:');
    const result = await runInstall(kustomization([], { 'backend-secret.yaml': example }));
    expect(result.output).toContain('Keeping the existing Secret kueuer-system/kueuer-backend');
    expect(result.code).toBe(0);
    expect(brokerUrl('kueuer-system')).toBe(url);
  }, 120_000);

  it("scripts/install.sh leaves out only kueuer-system's placeholder: a kueuer-backend Secret of another namespace in the same kustomization is applied", async () => {
    await stopWebhooks();
    const url = 'amqp://app:s3cret@rabbitmq.queues.svc:5672';
    createBrokerSecret(url);
    const shopUrl = 'amqp://shop:shop-s3cret@rabbitmq.queues.svc:5672';
    expect(cp.kubectl(['-n', 'shop', 'delete', 'secret', 'kueuer-backend', '--ignore-not-found']).code).toBe(0);
    const shopSecret = dumpYaml({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'kueuer-backend', namespace: 'shop' },
      data: { KUEUER_BACKEND: Buffer.from(shopUrl).toString('base64') },
    });
    const result = await runInstall(kustomization(['rabbitmq'], { 'shop-secret.yaml': shopSecret }));
    expect(result.output).toContain('Keeping the existing Secret kueuer-system/kueuer-backend');
    expect(result.code).toBe(0);
    expect(brokerUrl('kueuer-system')).toBe(url);
    expect(brokerUrl('shop')).toBe(shopUrl);
  }, 120_000);
});
