/**
 * `kueuer check` (the real CLI, dist/) against a real kube-apiserver with the
 * real `kueuer webhook` process: every line ok on a complete setup; then the
 * same cluster broken four ways (empty caBundle, unreachable broker, a
 * missing RoleBinding, the external metrics APIService owned by KEDA), each
 * named by its exact FAIL line with the fix, and exit status 1.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { dumpYaml } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startControlPlane, type ControlPlane, type KubeJson } from '../helpers/control-plane.js';
import { freePort } from '../helpers/net.js';
import { runKueuer, type KueuerProcess } from '../helpers/processes.js';
import { startWebhookProcess } from '../helpers/webhook-process.js';

const root = join(import.meta.dirname, '..', '..');
const amqpUrl = inject('amqpUrl');

describe('kueuer check', () => {
  let cp: ControlPlane;
  let webhook: KueuerProcess;
  let hookConfig: KubeJson;
  const check = () => runKueuer(['check'], { KUBECONFIG: cp.kubeconfig });
  const secret = (name: string, data: Record<string, string>) =>
    `apiVersion: v1\nkind: Secret\nmetadata: {name: ${name}, namespace: kueuer-system}\ndata: ${JSON.stringify(
      Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
    )}\n`;

  beforeAll(async () => {
    cp = await startControlPlane(inject('k8sBinDir'));
    const started = await startWebhookProcess(cp, ['kueuer-webhook.kueuer-system.svc', '127.0.0.1', 'localhost']);
    webhook = started.process;
    const certs = started.certs;
    hookConfig = started.configuration;
    const setup = [
      'apiVersion: v1\nkind: Namespace\nmetadata: {name: kueuer-system}\n',
      'apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {kueuer.io/injection: enabled}}\n',
      dumpYaml(hookConfig),
      secret('kueuer-webhook-tls', { 'tls.crt': readFileSync(certs.cert, 'utf8'), 'ca.crt': certs.ca.toString('utf8') }),
      secret('kueuer-backend', { KUEUER_BACKEND: amqpUrl }),
      'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: kueuer-config, namespace: kueuer-system}\ndata: {KUEUER_AUTOSCALING: "off"}\n',
    ];
    const r = cp.apply(setup.join('---\n'));
    expect(r.code, r.stderr).toBe(0);
    // The shipped RBAC.
    for (const file of ['manifests/base/rbac.yaml', 'manifests/base/autoscaling/rbac.yaml']) {
      const applied = cp.apply(readFileSync(join(root, file), 'utf8'));
      expect(applied.code, applied.stderr).toBe(0);
    }
  }, 5 * 60_000);

  afterAll(async () => {
    webhook?.child.kill('SIGKILL');
    await cp?.stop();
  }, 60_000);

  it('passes every check on a complete installation', async () => {
    const r = await check();
    expect(r.stderr).toBe('');
    const lines = r.stdout.trim().split('\n');
    expect(
      lines.filter((l) => !l.startsWith('ok  ')),
      r.stdout,
    ).toEqual(['kueuer check: all 9 checks passed']);
    expect(r.code).toBe(0);
    expect(lines).toContain('ok   native sidecars supported (Kubernetes v1.34.4 ≥ 1.29)');
    expect(lines).toContain('ok   webhook reachable through the apiserver (a dry-run pod in namespace shop got the sidecar)');
    expect(lines).toContain('ok   APIService v1beta1.external.metrics.k8s.io not needed (autoscaling off)');
    expect(lines).toContain(`ok   broker reachable: 127.0.0.1:${new URL(amqpUrl).port} (Secret kueuer-system/kueuer-backend)`);
    expect(lines).toContain('ok   RBAC sufficient (6 permissions of kueuer-system/kueuer-webhook and kueuer-system/kueuer-responder)');
    expect(r.stdout).toMatch(/^ok {3}CA certificate \(caBundle\) valid, 36[34] days to expiry/m);
    expect(r.stdout).toMatch(/^ok {3}serving certificate valid, 36[34] days to expiry/m);
    // Nothing was created by the dry run.
    expect(cp.getJson('pods', '-n', 'shop').items).toEqual([]);
    // No credentials are printed.
    expect(r.stdout).not.toContain('guest');
  }, 60_000);

  it('names each broken part with its FAIL line and fix, and exits 1', async () => {
    const closed = await freePort();
    const broken = structuredClone(hookConfig);
    for (const w of broken.webhooks) w.clientConfig.caBundle = '';
    const applied = cp.apply(
      [
        dumpYaml(broken),
        secret('kueuer-backend', { KUEUER_BACKEND: `amqp://guest:guest@127.0.0.1:${closed}` }),
        'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: kueuer-config, namespace: kueuer-system}\ndata: {KUEUER_AUTOSCALING: external}\n',
        `apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata: {name: v1beta1.external.metrics.k8s.io}
spec:
  group: external.metrics.k8s.io
  version: v1beta1
  groupPriorityMinimum: 100
  versionPriority: 100
  insecureSkipTLSVerify: true
  service: {namespace: keda, name: keda-operator-metrics-apiserver}
`,
      ].join('---\n'),
    );
    expect(applied.code, applied.stderr).toBe(0);
    expect(cp.kubectl(['delete', 'clusterrolebinding', 'kueuer-responder']).code).toBe(0);

    const r = await check();
    expect(r.code).toBe(1);
    const lines = r.stdout.trim().split('\n');
    const failIndex = (prefix: string) => lines.findIndex((l) => l.startsWith(prefix));
    const expectFail = (line: string, fix: string) => {
      const i = failIndex(line);
      expect(i, `${line}\n--- in ---\n${r.stdout}`).toBeGreaterThanOrEqual(0);
      expect(lines[i]).toBe(line);
      expect(lines[i + 1]).toBe(`     fix: ${fix}`);
    };
    expectFail(
      'FAIL the webhook configuration has an empty caBundle: the apiserver cannot verify the webhook, so every opted-in pod and Service is refused',
      'set the caBundle: run scripts/install.sh, use the cert-manager component, or let the webhook (--cert-source self) set it',
    );
    expect(lines[failIndex('FAIL webhook not reachable through the apiserver (dry-run pod in namespace shop): ')]).toMatch(/x509|certificate/);
    expectFail(
      `FAIL broker 127.0.0.1:${closed} (Secret kueuer-system/kueuer-backend) not reachable: ECONNREFUSED`,
      'check the broker runs and the host and port in KUEUER_BACKEND',
    );
    expectFail(
      'FAIL RBAC insufficient: kueuer-responder may not watch services (learns its routes)',
      'apply the ClusterRoles and bindings of manifests/base/rbac.yaml and manifests/base/autoscaling/rbac.yaml',
    );
    expectFail(
      "FAIL APIService v1beta1.external.metrics.k8s.io is owned by keda/keda-operator-metrics-apiserver, not Kueuer's kueuer-system/kueuer-webhook",
      "run Kueuer with --autoscaling keda (KUEUER_AUTOSCALING=keda; the keda component or the chart's autoscaling.mode=keda)",
    );
    expect(lines.at(-1)).toBe('kueuer check: 5 of 9 checks failed');
  }, 60_000);
});
