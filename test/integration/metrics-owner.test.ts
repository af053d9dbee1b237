/**
 * Against a real kube-apiserver (issue 14, item 6): `kueuer webhook
 * --autoscaling external` refuses to start when another metrics server owns
 * v1beta1.external.metrics.k8s.io, naming it and the switch; it starts when
 * the APIService is Kueuer's. The webhook runs as its ServiceAccount with the
 * shipped RBAC, so this also proves it may read that APIService.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startControlPlane, type ControlPlane } from '../helpers/control-plane.js';
import { freePort } from '../helpers/net.js';
import { msgIs, runKueuer, spawnKueuer } from '../helpers/processes.js';
import { generateCerts } from '../helpers/webhook.js';

const root = join(import.meta.dirname, '..', '..');

const apiService = (namespace: string, name: string) => `
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata: {name: v1beta1.external.metrics.k8s.io}
spec:
  group: external.metrics.k8s.io
  version: v1beta1
  service: {namespace: ${namespace}, name: ${name}}
  insecureSkipTLSVerify: true
  groupPriorityMinimum: 100
  versionPriority: 100
`;

describe('the external metrics APIService owner, through a real kube-apiserver', () => {
  let cp: ControlPlane;
  let asWebhook: string;
  const certs = generateCerts(undefined, ['kueuer-webhook.kueuer-system.svc']);

  beforeAll(async () => {
    cp = await startControlPlane(inject('k8sBinDir'));
    for (const f of ['manifests/base/namespace.yaml', 'manifests/base/rbac.yaml', 'manifests/base/autoscaling/rbac.yaml']) {
      const r = cp.kubectl(['apply', '-f', join(root, f)]);
      expect(r.stderr).toBe('');
    }
    asWebhook = cp.kubeconfigAs('kueuer-system', 'kueuer-webhook');
  });
  afterAll(async () => {
    await cp?.stop();
  });

  const webhookArgs = async () => [
    'webhook',
    '--listen',
    `127.0.0.1:${await freePort()}`,
    '--tls-cert',
    certs.cert,
    '--tls-key',
    certs.key,
    '--autoscaling',
    'external',
  ];

  it("refuses to start when KEDA's metrics server owns it, naming the owner and --autoscaling keda", async () => {
    expect(cp.kubectl(['apply', '-f', '-'], apiService('keda', 'keda-metrics-apiserver')).code).toBe(0);
    const r = await runKueuer(await webhookArgs(), { KUBECONFIG: asWebhook });
    expect(r.code).not.toBe(0);
    const said = r.stdout + r.stderr;
    expect(said).toContain('owned by keda/keda-metrics-apiserver');
    expect(said).toContain('--autoscaling keda');
    // Nothing was taken over.
    const after = cp.kubectl(['get', 'apiservice', 'v1beta1.external.metrics.k8s.io', '-o', 'jsonpath={.spec.service.namespace}/{.spec.service.name}']);
    expect(after.stdout).toBe('keda/keda-metrics-apiserver');
  });

  it("starts when the APIService is Kueuer's own", async () => {
    expect(cp.kubectl(['apply', '-f', '-'], apiService('kueuer-system', 'kueuer-webhook')).code).toBe(0);
    const webhook = spawnKueuer(await webhookArgs(), { KUBECONFIG: asWebhook });
    try {
      await webhook.waitForLog(msgIs('webhook ready'), 30_000);
    } finally {
      webhook.child.kill('SIGTERM');
    }
  });
});
