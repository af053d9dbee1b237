/**
 * Issue 14 item 6: who owns v1beta1.external.metrics.k8s.io (the webhook's
 * and install.sh's refusal), and how keda mode's ScaledObjects verify the
 * webhook's certificate (the shipped ClusterTriggerAuthentication).
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadAllYaml } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { BACKLOG_AUTH_NAME, desiredBacklogAuthentication, desiredScaledObject, type ScalingPlan } from '../../webhook/autoscaling/desired-objects.js';
import { decideMetricsOwner, expectedMetricsService, KUEUER_METRICS_SERVICE } from '../../webhook/autoscaling/metrics-owner.js';
import { AUTOSCALING_DEFAULTS } from '../../webhook/autoscaling/settings.js';

const root = join(import.meta.dirname, '..', '..');
const apiService = (namespace: string | undefined, name: string | undefined) => ({ spec: { service: namespace || name ? { namespace, name } : null } });

describe('the owner of the external metrics APIService', () => {
  it("starts when no APIService exists, or when it points at Kueuer's webhook Service", () => {
    expect(decideMetricsOwner(null)).toEqual({ kind: 'absent' });
    expect(decideMetricsOwner(apiService('kueuer-system', 'kueuer-webhook'))).toEqual({ kind: 'ours' });
    expect(decideMetricsOwner(apiService('ops', 'kueuer-webhook'), { namespace: 'ops', name: 'kueuer-webhook' })).toEqual({ kind: 'ours' });
  });

  it("refuses KEDA's, naming it and the switch to --autoscaling keda", () => {
    const d = decideMetricsOwner(apiService('keda', 'keda-metrics-apiserver'));
    expect(d).toEqual({
      kind: 'foreign',
      owner: 'keda/keda-metrics-apiserver',
      message:
        "APIService v1beta1.external.metrics.k8s.io is owned by keda/keda-metrics-apiserver, not Kueuer's kueuer-system/kueuer-webhook: " +
        'only one external metrics server can run per cluster, so --autoscaling external refuses to take it over; ' +
        "run Kueuer with --autoscaling keda (KUEUER_AUTOSCALING=keda; the keda component or the chart's autoscaling.mode=keda)",
    });
  });

  it("refuses prometheus-adapter's with --autoscaling prometheus-adapter, and any other with the uninstall", () => {
    const adapter = decideMetricsOwner(apiService('monitoring', 'prometheus-adapter'));
    expect(adapter.kind === 'foreign' && adapter.message).toMatch(
      /owned by monitoring\/prometheus-adapter, .*; run Kueuer with --autoscaling prometheus-adapter/,
    );
    const datadog = decideMetricsOwner(apiService('datadog', 'datadog-cluster-agent-metrics-api'));
    expect(datadog.kind === 'foreign' && datadog.message).toMatch(
      /owned by datadog\/datadog-cluster-agent-metrics-api, .*; uninstall the other metrics server \(kubectl delete apiservice v1beta1\.external\.metrics\.k8s\.io\)/,
    );
    // Kueuer's Service name in another namespace is not Kueuer's.
    expect(decideMetricsOwner(apiService('elsewhere', 'kueuer-webhook')).kind).toBe('foreign');
    const local = decideMetricsOwner(apiService(undefined, undefined));
    expect(local.kind === 'foreign' && local.owner).toBe('the API server itself (no spec.service)');
  });

  it('expects the Service the manifests and the chart point the APIService at, in --system-namespace', () => {
    const [shipped] = loadAllYaml(readFileSync(join(root, 'manifests/base/autoscaling/external-metrics-apiservice.yaml'), 'utf8')) as {
      spec: { service: { namespace: string; name: string } };
    }[];
    expect({ namespace: shipped!.spec.service.namespace, name: shipped!.spec.service.name }).toEqual(KUEUER_METRICS_SERVICE);
    expect(readFileSync(join(root, 'charts/kueuer/templates/apiservice.yaml'), 'utf8')).toMatch(
      /service:\n\s+name: kueuer-webhook\n\s+namespace: \{\{ \.Release\.Namespace \}\}/,
    );
    expect(expectedMetricsService({})).toEqual(KUEUER_METRICS_SERVICE);
    expect(expectedMetricsService({ KUEUER_SYSTEM_NAMESPACE: 'ops' })).toEqual({ namespace: 'ops', name: 'kueuer-webhook' });
  });

  it('scripts/install.sh refuses with the same message before applying anything', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kueuer-install-'));
    try {
      const calls = join(dir, 'calls');
      // A kubectl that renders an APIService (install.sh reads the render with patch --local and a
      // go-template, which prints its argument for the APIService) and reports KEDA's as installed;
      // any apply is recorded.
      writeFileSync(
        join(dir, 'kubectl'),
        `#!/usr/bin/env bash
echo "$*" >> ${JSON.stringify(calls)}
case "$1" in
  kustomize) printf 'kind: APIService\\nmetadata:\\n  name: v1beta1.external.metrics.k8s.io\\n' ;;
  patch) [[ "$*" == *'(eq .kind "APIService")'* ]] && printf yes ;;
  get) printf 'keda/keda-metrics-apiserver' ;;
  *) exit 0 ;;
esac
`,
      );
      chmodSync(join(dir, 'kubectl'), 0o755);
      const r = spawnSync('bash', [join(root, 'scripts/install.sh')], {
        encoding: 'utf8',
        env: { ...process.env, PATH: `${dir}:${process.env.PATH}`, KUEUER_CERT_DIR: dir },
      });
      const want = decideMetricsOwner(apiService('keda', 'keda-metrics-apiserver'));
      expect(r.status).toBe(1);
      expect(r.stderr.trim()).toBe(want.kind === 'foreign' ? want.message : '');
      expect(readFileSync(calls, 'utf8')).not.toMatch(/apply/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("keda mode: the metrics-api trigger verifies the webhook's certificate", () => {
  const plan: ScalingPlan = {
    workload: { kind: 'Deployment', metadata: { name: 'orders', namespace: 'shop', uid: 'u1' }, spec: { template: {} } },
    queue: 'shop.orders',
    settings: { ...AUTOSCALING_DEFAULTS },
  };

  it('sets authMode tls and an authenticationRef to the ClusterTriggerAuthentication kueuer-backlog', () => {
    const so = desiredScaledObject(plan, 'https://kueuer-webhook.kueuer-system.svc/backlog') as { spec: { triggers: Record<string, unknown>[] } };
    expect(so.spec.triggers[0]).toMatchObject({
      type: 'metrics-api',
      metadata: { url: 'https://kueuer-webhook.kueuer-system.svc/backlog/shop.orders', authMode: 'tls' },
      authenticationRef: { name: BACKLOG_AUTH_NAME, kind: 'ClusterTriggerAuthentication' },
    });
    // Never the escape hatch.
    expect(JSON.stringify(so)).not.toMatch(/unsafeSsl/);
  });

  it('the ClusterTriggerAuthentication reads ca, cert and key from the Secret kueuer-backlog-tls; the keda component ships exactly it', () => {
    const auth = desiredBacklogAuthentication() as { spec: { secretTargetRef: { parameter: string }[] } };
    expect(auth.spec.secretTargetRef.map((r) => r.parameter)).toEqual(['ca', 'cert', 'key']);
    const [shipped] = loadAllYaml(readFileSync(join(root, 'manifests/components/keda/backlog-authentication.yaml'), 'utf8'));
    expect(shipped).toEqual(auth);
    const component = loadAllYaml(readFileSync(join(root, 'manifests/components/keda/kustomization.yaml'), 'utf8'))[0] as { resources: string[] };
    expect(component.resources).toContain('backlog-authentication.yaml');
  });
});

describe('which workloads get an autoscaler', () => {
  it('a pod template opted in by the label kueuer.io/inject (the deprecated annotation still counts)', async () => {
    const { decideWorkload } = await import('../../webhook/autoscaling/desired-objects.js');
    const workload = (template: { labels?: Record<string, string>; annotations?: Record<string, string> }) => ({
      kind: 'Deployment' as const,
      metadata: { name: 'web', namespace: 'shop', uid: 'u' },
      spec: { template: { metadata: template } },
    });
    expect(decideWorkload(workload({ labels: { 'kueuer.io/inject': 'true' } })).kind).toBe('scale');
    expect(decideWorkload(workload({ annotations: { 'kueuer.io/inject': 'true' } })).kind).toBe('scale');
    expect(decideWorkload(workload({ labels: { app: 'web' } })).kind).toBe('none');
  });
});
