/**
 * `kueuer check` and `kueuer status` (the real CLI, dist/) run by a user who
 * may read only some of what they read (a ServiceAccount of a real
 * kube-apiserver with RBAC): every check still runs and each forbidden read
 * is its own FAIL line naming the verb and resource; status shows the
 * forbidden pods and HPA cells as unknown with a note instead of failing.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startControlPlane, type ControlPlane } from '../helpers/control-plane.js';
import { runKueuer } from '../helpers/processes.js';

const amqpUrl = inject('amqpUrl');

describe('kueuer check and status with forbidden reads', () => {
  let cp: ControlPlane;
  let kubeconfig: string;

  beforeAll(async () => {
    cp = await startControlPlane(inject('k8sBinDir'));
    const setup = [
      'apiVersion: v1\nkind: Namespace\nmetadata: {name: kueuer-system}\n',
      'apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {kueuer.io/injection: enabled}}\n',
      'apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: viewer, namespace: default}\n',
      `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: namespaces-and-workloads}
rules:
- {apiGroups: [""], resources: [namespaces], verbs: [list]}
- {apiGroups: [apps], resources: [deployments, statefulsets], verbs: [list]}
`,
      `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: viewer}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: namespaces-and-workloads}
subjects: [{kind: ServiceAccount, name: viewer, namespace: default}]
`,
      `apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: shop}
spec:
  selector: {matchExpressions: [{key: app, operator: In, values: [api]}]}
  template:
    metadata: {labels: {app: api, kueuer.io/inject: "true"}}
    spec: {containers: [{name: app, image: example.com/api:1}]}
`,
    ];
    const r = cp.apply(setup.join('---\n'));
    expect(r.code, r.stderr).toBe(0);
    kubeconfig = cp.kubeconfigAs('default', 'viewer');
  }, 5 * 60_000);

  afterAll(async () => {
    await cp?.stop();
  }, 60_000);

  it('check: every check runs; each forbidden read is a FAIL naming verb and resource', async () => {
    const r = await runKueuer(['check'], { KUBECONFIG: kubeconfig });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(1);
    const fails = r.stdout.split('\n').filter((l) => l.startsWith('FAIL'));
    expect(fails, r.stdout).toEqual([
      'FAIL MutatingWebhookConfiguration kueuer: forbidden: the user running kueuer check may not get mutatingwebhookconfigurations.admissionregistration.k8s.io',
      'FAIL serving certificate unknown: cannot read Secret kueuer-system/kueuer-webhook-tls: forbidden: the user running kueuer check may not get secrets in namespace kueuer-system',
      expect.stringMatching(/^FAIL webhook not checked: the user running kueuer check may not create pods in namespace shop \(even as a dry run\): /),
      'FAIL APIService v1beta1.external.metrics.k8s.io unknown: forbidden: the user running kueuer check may not get apiservices.apiregistration.k8s.io',
      'FAIL broker unknown: cannot read Secret kueuer-system/kueuer-backend: forbidden: the user running kueuer check may not get secrets in namespace kueuer-system',
      'FAIL queue depths not checked: cannot read Secret kueuer-system/kueuer-backend',
      'FAIL replication of shop.api unknown: cannot read Secret shop/kueuer-backend: forbidden: the user running kueuer check may not get secrets in namespace shop',
      'FAIL RBAC unknown: forbidden: the user running kueuer check may not create subjectaccessreviews.authorization.k8s.io',
      'FAIL traffic of the opted-in Services unknown: forbidden: the user running kueuer check may not list services',
    ]);
    expect(r.stdout).toMatch(/^ok {3}Kubernetes API answers at https:\/\/127\.0\.0\.1:\d+ /m);
    expect(r.stdout.trim().split('\n').at(-1)).toBe('kueuer check: 9 of 11 checks failed');
  }, 60_000);

  it('status: forbidden pods and HPA show as unknown with a note; the rest of the row stays', async () => {
    const r = await runKueuer(['status', '--backend', amqpUrl], { KUBECONFIG: kubeconfig });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const [header, row] = r.stdout.split('\n');
    expect(header).toMatch(/^NAMESPACE +WORKLOAD +QUEUE +BACKLOG +READY\/REPLICAS +DESIRED +INJECTED$/);
    const cells = row!.split(/ +/);
    // The backlog (column 4) is the broker's business, not this test's.
    expect([...cells.slice(0, 3), ...cells.slice(4)]).toEqual(['shop', 'deployment/api', 'shop.api', '0/1', 'unknown', 'unknown']);
    expect(r.stdout).toContain('deployment/api: pods unknown: forbidden: this user may not list pods in namespace shop (kubectl auth can-i list pods -n shop)');
    expect(r.stdout).toContain(
      'deployment/api: desired replicas unknown: forbidden: this user may not get horizontalpodautoscalers.autoscaling in namespace shop',
    );
  }, 60_000);
});
