/**
 * scripts/uninstall.sh against a real kube-apiserver with the real `kueuer
 * webhook` process: every Service the webhook rewrote, in every namespace, is
 * restored (selector and target ports) before Kueuer's objects are deleted;
 * with the webhook unreachable it deletes nothing and names the Services left.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dumpYaml } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startControlPlane, type ControlPlane, type KubeJson } from '../helpers/control-plane.js';
import type { KueuerProcess } from '../helpers/processes.js';
import { startWebhookProcess } from '../helpers/webhook-process.js';

const root = join(import.meta.dirname, '..', '..');

describe('scripts/uninstall.sh', () => {
  let cp: ControlPlane;
  let webhook: KueuerProcess;
  /** A kustomization holding what this test installs of Kueuer: the webhook configuration and a ConfigMap. */
  const installDir = mkdtempSync(join(tmpdir(), 'kueuer-uninstall-'));

  function uninstall(timeoutSeconds: number, args = [installDir]): { code: number | null; stdout: string; stderr: string } {
    const r = spawnSync('bash', [join(root, 'scripts', 'uninstall.sh'), '--yes', ...args], {
      encoding: 'utf8',
      env: { ...process.env, KUBECONFIG: cp.kubeconfig, KUBECTL: join(cp.binDir, 'kubectl'), KUEUER_UNINSTALL_TIMEOUT: String(timeoutSeconds) },
      timeout: 120_000,
    });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  const service = (ns: string, name: string, labels: Record<string, string>, annotations: Record<string, string> = {}) => `
apiVersion: v1
kind: Service
metadata: {name: ${name}, namespace: ${ns}, labels: ${JSON.stringify(labels)}, annotations: ${JSON.stringify(annotations)}}
spec:
  selector: {app: ${name}}
  ports: [{name: http, port: 80, targetPort: 8080}, {name: admin, port: 81, targetPort: admin}]
`;

  beforeAll(async () => {
    cp = await startControlPlane(inject('k8sBinDir'));
    const started = await startWebhookProcess(cp);
    webhook = started.process;
    writeFileSync(join(installDir, 'webhook.yaml'), dumpYaml(started.configuration));
    writeFileSync(
      join(installDir, 'config.yaml'),
      'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: kueuer-config, namespace: kueuer-system}\ndata: {KUEUER_LOG_LEVEL: info}\n',
    );
    writeFileSync(join(installDir, 'kustomization.yaml'), 'resources: [webhook.yaml, config.yaml]\n');
    expect(cp.apply('apiVersion: v1\nkind: Namespace\nmetadata: {name: kueuer-system}\n').code).toBe(0);
    const installed = cp.kubectl(['apply', '-k', installDir]);
    expect(installed.stderr).toBe('');
    const setup = ['shop', 'billing']
      .map((ns) => `apiVersion: v1\nkind: Namespace\nmetadata: {name: ${ns}, labels: {kueuer.io/injection: enabled}}\n`)
      .join('---\n');
    expect(cp.apply(setup).stderr).toBe('');
    const labelled = { 'kueuer.io/inject': 'true' };
    const services = [
      service('shop', 'web', labelled),
      service('billing', 'api', labelled, { 'kueuer.io/inject': 'true' }), // label and the deprecated annotation
      service('billing', 'plain', {}),
    ];
    const r = cp.apply(services.join('---\n'));
    expect(r.code, r.stderr).toBe(0);
    for (const [ns, name] of [
      ['shop', 'web'],
      ['billing', 'api'],
    ] as const) {
      const svc = cp.getJson('service', '-n', ns, name);
      expect(svc.spec.selector, `${ns}/${name} is queued`).toBeUndefined();
      expect(svc.metadata.annotations['kueuer.io/original-service']).toBeDefined();
    }
  }, 5 * 60_000);

  afterAll(async () => {
    webhook?.child.kill('SIGKILL');
    await cp?.stop();
  }, 60_000);

  it('with the webhook unreachable: deletes nothing, exits 1 and names every Service left', () => {
    webhook.child.kill('SIGSTOP');
    try {
      const r = uninstall(3);
      expect(r.code).toBe(1);
      expect(r.stdout).toContain('kueuer uninstall: 2 Service(s) to restore');
      expect(r.stderr).toContain('kueuer uninstall: after 3s these Services are still pointed at the responder: billing/api shop/web');
      expect(r.stderr).toContain('nothing was deleted');
      expect(cp.tryGetJson('mutatingwebhookconfiguration', 'kueuer')).not.toBeNull();
      expect(cp.tryGetJson('configmap', '-n', 'kueuer-system', 'kueuer-config')).not.toBeNull();
      expect(cp.getJson('service', '-n', 'shop', 'web').spec.selector).toBeUndefined();
    } finally {
      webhook.child.kill('SIGCONT');
    }
  }, 120_000);

  const queued = [
    ['shop', 'web'],
    ['billing', 'api'],
  ] as const;

  /** An EndpointSlice of Service shop/web, as the webhook's endpoint mirror (managedBy kueuer.io) or another controller keeps one. */
  const slice = (name: string, managedBy: string) => `
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: ${name}
  namespace: shop
  labels: {kubernetes.io/service-name: web, endpointslice.kubernetes.io/managed-by: ${managedBy}}
addressType: IPv4
ports: [{name: http, port: 20001, protocol: TCP}]
endpoints: [{addresses: [10.99.0.7], conditions: {ready: true}}]
`;

  it('--restore-only restores every rewritten Service, deletes the mirrored EndpointSlices at once, and leaves Kueuer installed (for a Helm install)', () => {
    // The webhook's endpoint mirror keeps kueuer-web; kueuer-stale-web stands for one a removed webhook left
    // behind, which would keep routing part of the restored Service to responder pods.
    const slices = cp.kubectl(['create', '-f', '-'], [slice('kueuer-stale-web', 'kueuer.io'), slice('web-other', 'controller.example.com')].join('---\n'));
    expect(slices.code, slices.stderr).toBe(0);
    const r = uninstall(60, ['--restore-only']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('kueuer uninstall: deleted the EndpointSlices mirrored for queued Services');
    expect(cp.getJson('endpointslice', '-n', 'shop', '-l', 'endpointslice.kubernetes.io/managed-by=kueuer.io').items).toEqual([]);
    expect(cp.tryGetJson('endpointslice', '-n', 'shop', 'web-other')).not.toBeNull();
    expect(cp.kubectl(['-n', 'shop', 'delete', 'endpointslice', 'web-other']).code).toBe(0);
    expect(r.stdout).toContain('every Service is restored. Now remove Kueuer (e.g. helm uninstall kueuer --namespace kueuer-system), then:');
    for (const [ns, name] of queued) expect(cp.getJson('service', '-n', ns, name).spec.selector).toEqual({ app: name });
    expect(cp.tryGetJson('mutatingwebhookconfiguration', 'kueuer')).not.toBeNull();
    // Queue them again for the full uninstall.
    for (const [ns, name] of queued) expect(cp.kubectl(['-n', ns, 'label', 'service', name, 'kueuer.io/inject=true']).code).toBe(0);
    for (const [ns, name] of queued) expect(cp.getJson('service', '-n', ns, name).spec.selector).toBeUndefined();
  }, 120_000);

  it('restores every rewritten Service in every namespace, then deletes Kueuer', () => {
    const r = uninstall(60);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('kueuer uninstall: restored Service billing/api');
    expect(r.stdout).toContain('kueuer uninstall: restored Service shop/web');
    for (const [ns, name] of [
      ['shop', 'web'],
      ['billing', 'api'],
    ] as const) {
      const svc = cp.getJson('service', '-n', ns, name);
      expect(svc.spec.selector).toEqual({ app: name });
      expect(svc.spec.ports.map((p: KubeJson) => [p.port, p.targetPort])).toEqual([
        [80, 8080],
        [81, 'admin'],
      ]);
      expect(svc.metadata.annotations?.['kueuer.io/original-service']).toBeUndefined();
      expect(svc.metadata.annotations?.['kueuer.io/responder-port']).toBeUndefined();
      expect(svc.metadata.annotations?.['kueuer.io/inject']).toBeUndefined();
      expect(svc.metadata.labels?.['kueuer.io/inject']).toBeUndefined();
    }
    expect(cp.getJson('service', '-n', 'billing', 'plain').spec.selector).toEqual({ app: 'plain' });
    expect(cp.tryGetJson('mutatingwebhookconfiguration', 'kueuer')).toBeNull();
    expect(cp.tryGetJson('configmap', '-n', 'kueuer-system', 'kueuer-config')).toBeNull();
  }, 120_000);
});
