/**
 * Against a real kube-apiserver (issue 14, item 6 follow-up): in keda mode
 * with --cert-source self, the webhook keeps the Secret keda/kueuer-backlog-tls
 * (the CA with which KEDA's metrics-api scaler verifies /backlog, through the
 * ClusterTriggerAuthentication kueuer-backlog) in step with its own CA
 * bundle. The keda overlay is applied as `kubectl apply -k` renders it (its
 * Role lets the webhook write that one Secret); the webhook runs on this
 * machine as its ServiceAccount. The Secret appears with the caBundle's CAs
 * and a client pair; through CA rotations (lifetimes of seconds) the CA that
 * signed the served certificate is always in it; a client pair already there
 * (install.sh's) is kept while ca.crt is replaced.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import { CoreV1Api, dumpYaml, KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { issueCa, issueClientCert } from '../../webhook/certs/issue.js';
import { startControlPlane, type ControlPlane, type KubeJson } from '../helpers/control-plane.js';
import { hostAddress } from '../helpers/local-endpoint.js';
import { freePort } from '../helpers/net.js';
import { applyRendered, bundleFingerprints, certificatesIn, selfIssuedWebhooks, servedCertificateOf } from '../helpers/self-issued-webhook.js';
import { waitFor } from '../helpers/stack.js';

const root = join(import.meta.dirname, '..', '..');

const anything = () => ({ type: 'object', 'x-kubernetes-preserve-unknown-fields': true });
/** A stand-in for KEDA's CRD (keda.sh/v1alpha1), any content: the webhook lists ScaledObjects in keda mode. */
const kedaCrd = (kind: string, plural: string) => ({
  apiVersion: 'apiextensions.k8s.io/v1',
  kind: 'CustomResourceDefinition',
  metadata: { name: `${plural}.keda.sh` },
  spec: {
    group: 'keda.sh',
    scope: 'Namespaced',
    names: { kind, plural, singular: kind.toLowerCase(), listKind: `${kind}List` },
    versions: [
      { name: 'v1alpha1', served: true, storage: true, schema: { openAPIV3Schema: { type: 'object', properties: { spec: anything(), status: anything() } } } },
    ],
  },
});

const text = (base64: string | undefined) => Buffer.from(base64 ?? '', 'base64').toString('utf8');

describe("KEDA's CA Secret follows the self-issued CA, through a real kube-apiserver", () => {
  let cp: ControlPlane;
  let asWebhook = '';
  const address = hostAddress();
  let port = 0;

  const webhookBundle = (): string[] =>
    bundleFingerprints((cp.getJson('mutatingwebhookconfiguration', 'kueuer').webhooks as KubeJson[])[0]!.clientConfig.caBundle as string);
  const kedaSecret = (): KubeJson | null => cp.tryGetJson('secret', 'kueuer-backlog-tls', '-n', 'keda');

  const webhooks = selfIssuedWebhooks(() => asWebhook);
  const startWebhook = (extra: string[] = []) => webhooks.start(`${address}:${port}`, ['--autoscaling', 'keda', ...extra]);

  beforeAll(async () => {
    cp = await startControlPlane(inject('k8sBinDir'));
    port = await freePort();
    // KEDA's namespace and (stand-ins of) its CRDs, as KEDA's own install creates them; KEDA itself does not run here.
    const keda = [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'keda' } }, kedaCrd('ScaledObject', 'scaledobjects')];
    expect(cp.apply(keda.map((o) => dumpYaml(o)).join('---\n')).stderr).toBe('');
    expect(cp.kubectl(['wait', '--for=condition=Established', '--timeout=60s', 'crd/scaledobjects.keda.sh']).code).toBe(0);
    // The keda overlay as `kubectl apply -k manifests/overlays/keda` renders it, without the Deployments
    // (no kubelet: the webhook runs on this machine) and the ClusterTriggerAuthentication (KEDA's, not read here).
    const objects = applyRendered(cp, join(root, 'manifests', 'overlays', 'keda'), ['Deployment', 'ClusterTriggerAuthentication']);
    expect(objects.filter((o) => o.metadata.namespace === 'keda').map((o) => o.kind)).toEqual(['Role', 'RoleBinding']);
    asWebhook = cp.kubeconfigAs('kueuer-system', 'kueuer-webhook');
  }, 5 * 60_000);

  // The webhooks first: they must not outlive the apiserver they watch.
  afterAll(() => webhooks.stopAll().then(() => cp?.stop()), 60_000);

  it('creates keda/kueuer-backlog-tls before Ready: ca.crt is the caBundle, tls.crt/tls.key a client pair of that CA', async () => {
    expect(kedaSecret()).toBeNull();
    await startWebhook();
    const secret = kedaSecret();
    expect(secret).not.toBeNull();
    expect(Object.keys(secret!.data as object).sort()).toEqual(['ca.crt', 'tls.crt', 'tls.key']);
    const bundle = webhookBundle();
    expect(bundle).toHaveLength(1);
    expect(bundleFingerprints(secret!.data['ca.crt'] as string)).toEqual(bundle);
    const [ca] = certificatesIn(secret!.data['ca.crt'] as string);
    const client = new X509Certificate(text(secret!.data['tls.crt'] as string));
    expect(client.checkPrivateKey(createPrivateKey(text(secret!.data['tls.key'] as string)))).toBe(true);
    expect(client.checkIssued(ca!)).toBe(true);
    expect(client.verify(ca!.publicKey)).toBe(true);
    // KEDA would verify the served certificate with it.
    expect((await servedCertificateOf(address, port)).verify(ca!.publicKey)).toBe(true);
  }, 120_000);

  it("the webhook's ServiceAccount may touch that Secret only, in KEDA's namespace", async () => {
    const kc = new KubeConfig();
    kc.loadFromFile(asWebhook);
    const core = kc.makeApiClient(CoreV1Api);
    await expect(core.readNamespacedSecret({ namespace: 'keda', name: 'kueuer-backlog-tls' })).resolves.toBeTruthy();
    expect(cp.kubectl(['-n', 'keda', 'create', 'secret', 'generic', 'keda-own', '--from-literal=a=b']).code).toBe(0);
    await expect(core.readNamespacedSecret({ namespace: 'keda', name: 'keda-own' })).rejects.toMatchObject({ code: 403 });
    await expect(core.listNamespacedSecret({ namespace: 'keda' })).rejects.toMatchObject({ code: 403 });
  });

  it('follows CA rotations: the CA of the served certificate is always in ca.crt, which ends equal to the caBundle', async () => {
    await webhooks.stopAll();
    // Lifetimes of seconds, as test/integration/self-issued-certs.test.ts: the CA rotates every ~19 s.
    await startWebhook(['--cert-lifetime', '10s', '--ca-lifetime', '30s', '--cert-check-interval', '300ms']);
    const kedaCas = new Set<string>();
    const clients = new Set<string>();
    const misses: string[] = [];
    let most = 0;
    let samples = 0;
    const until = Date.now() + 40_000;
    while (Date.now() < until) {
      const served = await servedCertificateOf(address, port);
      const data = kedaSecret()!.data as Record<string, string>;
      const cas = certificatesIn(data['ca.crt']);
      for (const c of cas) kedaCas.add(c.fingerprint256);
      clients.add(new X509Certificate(text(data['tls.crt'])).fingerprint256);
      most = Math.max(most, cas.length);
      if (!cas.some((ca) => served.checkIssued(ca) && served.verify(ca.publicKey))) misses.push(`${served.fingerprint256} at ${samples}`);
      samples++;
      await new Promise((r) => setTimeout(r, 200));
    }
    console.log(`keda CA secret: ${samples} samples, ${kedaCas.size} CAs seen, at most ${most} at once, ${clients.size} client pairs, ${misses.length} misses`);
    expect(misses).toEqual([]);
    expect(samples).toBeGreaterThan(20);
    expect(kedaCas.size).toBeGreaterThanOrEqual(2);
    // During a rotation the old CA stays beside the new one, as in the caBundle.
    expect(most).toBeGreaterThanOrEqual(2);
    await waitFor(
      () => JSON.stringify(bundleFingerprints(kedaSecret()!.data['ca.crt'] as string)) === JSON.stringify(webhookBundle()),
      5000,
      "KEDA's ca.crt to equal the caBundle",
    );
  }, 120_000);

  it("keeps a client pair already there (install.sh's) and its other keys, replacing a stale ca.crt", async () => {
    await webhooks.stopAll();
    const foreignCa = await issueCa('install-sh-ca', 86_400_000);
    const pair = await issueClientCert(foreignCa, 'keda-kueuer-backlog', 86_400_000);
    cp.kubectl(['-n', 'keda', 'delete', 'secret', 'kueuer-backlog-tls', '--ignore-not-found']);
    const b64 = (s: string) => Buffer.from(s).toString('base64');
    const created = cp.apply(
      dumpYaml({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'kueuer-backlog-tls', namespace: 'keda' },
        data: { 'ca.crt': b64(foreignCa.cert), 'tls.crt': b64(pair.cert), 'tls.key': b64(pair.key), note: b64('kept') },
      }),
    );
    expect(created.stderr).toBe('');
    const webhook = await startWebhook();
    const data = kedaSecret()!.data as Record<string, string>;
    expect(bundleFingerprints(data['ca.crt'])).toEqual(webhookBundle());
    expect(bundleFingerprints(data['ca.crt'])).not.toContain(new X509Certificate(foreignCa.cert).fingerprint256);
    expect(text(data['tls.crt'])).toBe(pair.cert);
    expect(text(data['tls.key'])).toBe(pair.key);
    expect(text(data.note)).toBe('kept');
    expect(webhook.logs.some((l) => l.msg === "set KEDA's CA bundle")).toBe(true);
  }, 120_000);
});
