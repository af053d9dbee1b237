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
import { waitFor } from '../helpers/stack.js';
import { startWebhookProcess } from '../helpers/webhook-process.js';
import { rabbitmqDefaultUserFor } from '../helpers/broker-secrets.js';

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
    // The controllers that keep a Service's Endpoints and EndpointSlices, as on a real cluster.
    cp = await startControlPlane(inject('k8sBinDir'), { controllers: ['endpoint', 'endpointslice', 'endpointslicemirroring'] });
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
    ).toEqual(['kueuer check: all 12 checks passed']);
    expect(r.code).toBe(0);
    expect(lines).toContain('ok   native sidecars supported (Kubernetes v1.34.4 ≥ 1.29)');
    expect(lines).toContain('ok   webhook reachable through the apiserver (a dry-run pod in namespace shop got the sidecar)');
    expect(lines).toContain('ok   APIService v1beta1.external.metrics.k8s.io not needed (autoscaling off)');
    expect(lines).toContain(`ok   broker reachable: 127.0.0.1:${new URL(amqpUrl).port} (Secret kueuer-system/kueuer-backend)`);
    expect(lines).toContain('ok   RBAC sufficient (7 permissions of kueuer-system/kueuer-webhook and kueuer-system/kueuer-responder)');
    expect(lines).toContain('ok   queue depths not needed (autoscaling off)');
    expect(lines).toContain('ok   replication of the queues: no opted-in workload');
    expect(lines).toContain('ok   all traffic of the 0 opted-in Service(s) reaches the responders');
    expect(r.stdout).toMatch(/^ok {3}CA certificate \(caBundle\) valid, 36[34] days to expiry/m);
    expect(r.stdout).toMatch(/^ok {3}serving certificate valid, 36[34] days to expiry/m);
    // Nothing was created by the dry run.
    expect(cp.getJson('pods', '-n', 'shop').items).toEqual([]);
    // No credentials are printed.
    expect(r.stdout).not.toContain('guest');
  }, 60_000);

  /** Polls `check` twice a second (each one runs kubectl). */
  const poll = (what: string, check: () => boolean, timeoutMs = 30_000) =>
    waitFor(async () => check() || (await new Promise((r) => setTimeout(r, 500)), false), timeoutMs, what);
  const slicesOf = (ns: string, service: string) => cp.getJson('endpointslices', '-n', ns, '-l', `kubernetes.io/service-name=${service}`).items as KubeJson[];
  const managers = (ns: string, service: string) =>
    slicesOf(ns, service)
      .map((s) => s.metadata.labels['endpointslice.kubernetes.io/managed-by'] as string)
      .sort();
  const endpointAddresses = (ns: string, name: string) =>
    ((cp.tryGetJson('endpoints', name, '-n', ns)?.subsets ?? []) as KubeJson[]).flatMap((s) => (s.addresses ?? []).map((a: KubeJson) => a.ip as string));

  it("a Service that already had endpoints, opted in: its Endpoints and the Kubernetes controllers' slices go and stay gone; opted out: Kubernetes gets them back", async () => {
    // An app running before anyone opted it in: a pod with an address (no kubelet here: the status is written by hand) and its Service.
    const setup = [
      'apiVersion: v1\nkind: Node\nmetadata: {name: node-1}\n',
      'apiVersion: v1\nkind: Namespace\nmetadata: {name: store, labels: {kueuer.io/injection: enabled}}\n',
      'apiVersion: v1\nkind: Pod\nmetadata: {name: legacy-1, namespace: store, labels: {app: legacy}}\nspec: {nodeName: node-1, containers: [{name: app, image: example.com/legacy:1, ports: [{containerPort: 8080}]}]}\n',
      'apiVersion: v1\nkind: Service\nmetadata: {name: legacy, namespace: store}\nspec: {selector: {app: legacy}, ports: [{name: http, port: 80, targetPort: 8080}]}\n',
    ];
    const applied = cp.apply(setup.join('---\n'));
    expect(applied.code, applied.stderr).toBe(0);
    const ready = JSON.stringify({
      status: { phase: 'Running', podIP: '10.9.9.9', podIPs: [{ ip: '10.9.9.9' }], conditions: [{ type: 'Ready', status: 'True' }] },
    });
    const patched = cp.kubectl(['-n', 'store', 'patch', 'pod', 'legacy-1', '--subresource=status', '--type=merge', '-p', ready]);
    expect(patched.code, patched.stderr).toBe(0);
    await poll("the Endpoints and the controller's slice of store/legacy to list the pod", () => {
      const slice = slicesOf('store', 'legacy').find((s) => s.metadata.labels['endpointslice.kubernetes.io/managed-by'] === 'endpointslice-controller.k8s.io');
      return endpointAddresses('store', 'legacy').includes('10.9.9.9') && (slice?.endpoints ?? []).length === 1;
    });

    // Opted in as README says: the label on the Service.
    const labelled = cp.kubectl(['-n', 'store', 'label', 'service', 'legacy', 'kueuer.io/inject=true']);
    expect(labelled.code, labelled.stderr).toBe(0);
    expect(cp.getJson('service', 'legacy', '-n', 'store').spec.selector).toBeUndefined();
    await poll("only Kueuer's slice for store/legacy, and no Endpoints", () => {
      return cp.tryGetJson('endpoints', 'legacy', '-n', 'store') === null && JSON.stringify(managers('store', 'legacy')) === '["kueuer.io"]';
    });
    // Long enough for the mirroring controller to have mirrored anything still there: nothing comes back.
    await new Promise((r) => setTimeout(r, 5000));
    expect(cp.tryGetJson('endpoints', 'legacy', '-n', 'store')).toBeNull();
    expect(managers('store', 'legacy')).toEqual(['kueuer.io']);
    const r = await check();
    expect(r.stdout).toContain('ok   all traffic of the 1 opted-in Service(s) reaches the responders');
    expect(r.code, r.stdout).toBe(0);

    // Opted out: the selector is back, Kubernetes' controllers own its endpoints again and Kueuer's slice goes.
    const unlabelled = cp.kubectl(['-n', 'store', 'label', 'service', 'legacy', 'kueuer.io/inject-']);
    expect(unlabelled.code, unlabelled.stderr).toBe(0);
    expect(cp.getJson('service', 'legacy', '-n', 'store').spec.selector).toEqual({ app: 'legacy' });
    await poll("Kubernetes' endpoints of store/legacy back, Kueuer's slice gone", () => {
      return endpointAddresses('store', 'legacy').includes('10.9.9.9') && JSON.stringify(managers('store', 'legacy')) === '["endpointslice-controller.k8s.io"]';
    });
    expect(slicesOf('store', 'legacy')[0]!.endpoints.map((e: KubeJson) => e.addresses[0])).toEqual(['10.9.9.9']);

    // Opted in again, for the last test.
    expect(cp.kubectl(['-n', 'store', 'label', 'service', 'legacy', 'kueuer.io/inject=true']).code).toBe(0);
    await poll(
      "only Kueuer's slice for store/legacy again",
      () => cp.tryGetJson('endpoints', 'legacy', '-n', 'store') === null && JSON.stringify(managers('store', 'legacy')) === '["kueuer.io"]',
    );
  }, 120_000);

  it('names each broken part with its FAIL line and fix, and exits 1', async () => {
    const closed = await freePort();
    const broken = structuredClone(hookConfig);
    for (const w of broken.webhooks) w.clientConfig.caBundle = '';
    const applied = cp.apply(
      [
        dumpYaml(broken),
        secret('kueuer-backend', { KUEUER_BACKEND: `amqp://guest:guest@127.0.0.1:${closed}`, KUEUER_RABBITMQ_MANAGEMENT_URL: `http://127.0.0.1:${closed}` }),
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
    expectFail(
      `FAIL queue depths unreadable, so nothing scales on backlog (Secret kueuer-system/kueuer-backend): RabbitMQ's management API at http://127.0.0.1:${closed} did not answer: connection refused: nothing listens on that port (ECONNREFUSED)`,
      "add KUEUER_RABBITMQ_MANAGEMENT_URL=http://USER:PASS@HOST:15672 (RabbitMQ's management API) to Secret kueuer-system/kueuer-backend; then restart the webhook: kubectl -n kueuer-system rollout restart deployment/kueuer-webhook",
    );
    expect(lines.at(-1)).toBe('kueuer check: 6 of 12 checks failed');
  }, 60_000);

  it('fails when the queue depths cannot be read: the real RabbitMQ with a wrong management URL, then the right one', async () => {
    const closed = await freePort();
    const u = new URL(amqpUrl);
    const right = `http://${u.username}:${u.password}@${u.hostname}:${Number(u.port) + 3}`; // scripts/dev/rabbitmq.sh: management on the AMQP port + 3
    const depthLine = async () => {
      const r = await check();
      const lines = r.stdout.split('\n');
      const i = lines.findIndex((l) => l.includes('queue depths'));
      return { r, line: lines[i], fix: lines[i + 1] };
    };
    const autoscaling = 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: kueuer-config, namespace: kueuer-system}\ndata: {KUEUER_AUTOSCALING: external}\n';
    expect(cp.apply(autoscaling).code).toBe(0);
    expect(cp.apply(secret('kueuer-backend', { KUEUER_BACKEND: amqpUrl, KUEUER_RABBITMQ_MANAGEMENT_URL: `http://guest:guest@127.0.0.1:${closed}` })).code).toBe(
      0,
    );
    const wrong = await depthLine();
    expect(wrong.r.code).toBe(1);
    expect(wrong.line).toBe(
      `FAIL queue depths unreadable, so nothing scales on backlog (Secret kueuer-system/kueuer-backend): RabbitMQ's management API at http://127.0.0.1:${closed} did not answer: connection refused: nothing listens on that port (ECONNREFUSED)`,
    );
    expect(wrong.fix).toBe(
      "     fix: add KUEUER_RABBITMQ_MANAGEMENT_URL=http://USER:PASS@HOST:15672 (RabbitMQ's management API) to Secret kueuer-system/kueuer-backend; then restart the webhook: kubectl -n kueuer-system rollout restart deployment/kueuer-webhook",
    );
    expect(cp.apply(secret('kueuer-backend', { KUEUER_BACKEND: amqpUrl, KUEUER_RABBITMQ_MANAGEMENT_URL: right })).code).toBe(0);
    const fixed = await depthLine();
    expect(fixed.line).toBe('ok   queue depths readable from the broker (Secret kueuer-system/kueuer-backend, KUEUER_RABBITMQ_MANAGEMENT_URL)');
    expect(fixed.r.stdout).not.toContain(u.password);
  }, 60_000);

  it("fails, naming the Service and the fix, when an opted-in Service has endpoints beside Kueuer's; kueuer status shows it", async () => {
    // The webhook (whose controller would remove it at once) is gone; an Endpoints object for store/legacy appears.
    webhook.child.kill('SIGKILL');
    const endpoints =
      'apiVersion: v1\nkind: Endpoints\nmetadata: {name: legacy, namespace: store}\nsubsets: [{addresses: [{ip: 10.9.9.9}], ports: [{name: http, port: 8080}]}]\n';
    expect(cp.apply(endpoints).code).toBe(0);
    const r = await check();
    expect(r.code).toBe(1);
    const lines = r.stdout.split('\n');
    const i = lines.findIndex((l) => l.startsWith('FAIL Service store/legacy'));
    expect(lines[i], r.stdout).toMatch(
      /^FAIL Service store\/legacy: part of its traffic bypasses Kueuer: an Endpoints object lists 1 address\(es\) of its own(; |$)/,
    );
    const fix =
      "     fix: the webhook's leader removes what Kubernetes kept within seconds: check it runs and may get/delete endpoints (manifests/base/rbac.yaml); " +
      "by hand: kubectl -n store delete endpoints legacy; kubectl -n store delete endpointslices -l 'kubernetes.io/service-name=legacy,endpointslice.kubernetes.io/managed-by!=kueuer.io'";
    expect(lines[i + 1]).toBe(fix);

    const status = await runKueuer(['status'], { KUBECONFIG: cp.kubeconfig });
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toMatch(/Services whose traffic bypasses Kueuer:\n {2}service\/store\/legacy: an Endpoints object lists 1 address\(es\) of its own/);
    expect(status.stdout).toContain(`\n    ${fix.trimStart()}`);
  }, 60_000);
  it("reads the RabbitMQ Cluster Operator's default-user Secret as it is, and names a Secret of unknown shape with its keys", async () => {
    const u = new URL(amqpUrl);
    // The operator's keys and values (internal/resource/default_user_secret.go), for the real node this test runs against.
    const defaultUser = rabbitmqDefaultUserFor(u.toString());
    expect(cp.apply([secret('my-rabbit-default-user', defaultUser), secret('mq-creds', { user: 'u', pass: 'p' })].join('---\n')).code).toBe(0);
    const r = await runKueuer(['check', '--backend-secret', 'my-rabbit-default-user'], { KUBECONFIG: cp.kubeconfig });
    expect(r.stdout).toContain(`ok   broker reachable: ${u.hostname}:${u.port} (Secret kueuer-system/my-rabbit-default-user)`);
    expect(r.stdout).not.toContain(u.password);
    const odd = await runKueuer(['check', '--backend-secret', 'mq-creds'], { KUBECONFIG: cp.kubeconfig });
    expect(odd.stdout).toMatch(
      /^FAIL broker unknown: the broker Secret mq-creds has the keys \[pass, user\], which match no broker Secret Kueuer reads; expected one of: KUEUER_BACKEND \(Kueuer's own\); username \+ password \+ host \+ port \(the RabbitMQ Cluster Operator's <cluster>-default-user\)/m,
    );
  }, 60_000);
});
