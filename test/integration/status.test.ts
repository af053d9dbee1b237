/**
 * `kueuer status` (the real CLI, dist/) against a real kube-apiserver with the
 * real `kueuer webhook` process and the test RabbitMQ: a workload whose pods
 * predate the webhook shows 0/1 injected and why, one admitted since shows
 * its pods injected with the sidecar's version and its queue's backlog; with
 * the broker unreachable the backlog is "unknown" with the reason.
 */
import { randomBytes } from 'node:crypto';
import { dumpYaml } from '@kubernetes/client-node';
import amqp from 'amqplib';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { RedisAsyncStore } from '../../responder/async/redis-store.js';
import { kueuerVersion } from '../../shared/version.js';
import { startControlPlane, type ControlPlane } from '../helpers/control-plane.js';
import { freePort } from '../helpers/net.js';
import { runKueuer, type KueuerProcess } from '../helpers/processes.js';
import { waitFor } from '../helpers/stack.js';
import { startWebhookProcess } from '../helpers/webhook-process.js';

const amqpUrl = inject('amqpUrl');
const redisUrl = inject('redisUrl');
/** scripts/dev/rabbitmq.sh runs the management API on the AMQP port + 3. */
const managementUrl = (() => {
  const u = new URL(amqpUrl);
  return `http://${u.username}:${u.password}@${u.hostname}:${Number(u.port) + 3}`;
})();

describe('kueuer status', () => {
  let cp: ControlPlane;
  let webhook: KueuerProcess;
  const ns = `status-${randomBytes(3).toString('hex')}`;
  const status = (...args: string[]) => runKueuer(['status', ...args], { KUBECONFIG: cp.kubeconfig });
  const deployment = (name: string, replicas: number, labels: Record<string, string>) => `
apiVersion: apps/v1
kind: Deployment
metadata: {name: ${name}, namespace: ${ns}}
spec:
  replicas: ${replicas}
  selector: {matchLabels: {app: ${name}}}
  template:
    metadata:
      labels: ${JSON.stringify({ app: name, ...labels })}
    spec:
      containers: [{name: app, image: example.com/${name}:1, ports: [{containerPort: 8080}]}]
`;
  const podsOf = async (app: string, count: number) =>
    waitFor(() => cp.getJson('pods', '-n', ns, '-l', `app=${app}`).items.length === count, 30_000, `${count} pods of ${app}`);

  beforeAll(async () => {
    cp = await startControlPlane(inject('k8sBinDir'));
    const started = await startWebhookProcess(cp);
    webhook = started.process;
    const setup = [
      'apiVersion: v1\nkind: Namespace\nmetadata: {name: kueuer-system}\n',
      `apiVersion: v1\nkind: Namespace\nmetadata: {name: ${ns}, labels: {kueuer.io/injection: enabled}}\n`,
      `apiVersion: v1\nkind: Secret\nmetadata: {name: kueuer-backend, namespace: kueuer-system}\nstringData: {KUEUER_BACKEND: "${amqpUrl}"}\n`,
      // Opted in before the webhook is registered: its pod has no sidecar.
      deployment('old', 1, { 'kueuer.io/inject': 'true' }),
      deployment('plain', 1, {}),
    ];
    const r = cp.apply(setup.join('---\n'));
    expect(r.code, r.stderr).toBe(0);
    await podsOf('old', 1);
    expect(cp.apply(dumpYaml(started.configuration)).code).toBe(0);
    expect(cp.apply(deployment('web', 2, { 'kueuer.io/inject': 'true' })).code).toBe(0);
    await podsOf('web', 2);
    // Three requests waiting in web's queue.
    const conn = await amqp.connect(amqpUrl);
    const ch = await conn.createConfirmChannel();
    await ch.assertQueue(`${ns}.web`, { durable: true });
    for (let i = 0; i < 3; i++) ch.sendToQueue(`${ns}.web`, Buffer.from('x'), { persistent: true });
    await ch.waitForConfirms();
    await conn.close();
  }, 5 * 60_000);

  afterAll(async () => {
    webhook?.child.kill('SIGKILL');
    await cp?.stop();
    const conn = await amqp.connect(amqpUrl);
    const ch = await conn.createChannel();
    await ch.deleteQueue(`${ns}.web`);
    await conn.close();
  }, 60_000);

  it('lists opted-in workloads with queue, backlog, replicas and injection, and why a pod has no sidecar', async () => {
    let out = '';
    await waitFor(
      async () => {
        const r = await status('--rabbitmq-management-url', managementUrl);
        expect(r.code, r.stderr).toBe(0);
        out = r.stdout;
        return /\/web .* 3 /.test(out);
      },
      15_000,
      'a backlog of 3 for web',
    );
    const lines = out.split('\n').map((l) => l.trim().split(/\s{2,}/));
    expect(lines[0]).toEqual(['NAMESPACE', 'WORKLOAD', 'QUEUE', 'BACKLOG', 'READY/REPLICAS', 'DESIRED', 'INJECTED']);
    expect(lines.slice(1, 3)).toEqual([
      [ns, 'deployment/old', `${ns}.old`, '0', '0/1', '-', '0/1'],
      [ns, 'deployment/web', `${ns}.web`, '3', '0/2', '-', `2/2 (${kueuerVersion()})`],
    ]);
    expect(out).not.toContain('deployment/plain');
    const oldPod = cp.getJson('pods', '-n', ns, '-l', 'app=old').items[0].metadata.name as string;
    expect(out).toContain(
      `deployment/old: 1 pod(s) without the sidecar (${oldPod}): created before the workload opted in or before the webhook ran; roll them: kubectl -n ${ns} rollout restart deployment/old`,
    );
    expect(out).not.toContain('guest');
  }, 60_000);

  it('reads KUEUER_RABBITMQ_MANAGEMENT_URL from the broker Secret as the components do; a wrong one is named, with the setting to fix', async () => {
    const backendSecret = (data: Record<string, string>) =>
      `apiVersion: v1\nkind: Secret\nmetadata: {name: kueuer-backend, namespace: kueuer-system}\nstringData: ${JSON.stringify(data)}\n`;
    expect(cp.apply(backendSecret({ KUEUER_BACKEND: amqpUrl, KUEUER_RABBITMQ_MANAGEMENT_URL: managementUrl })).code).toBe(0);
    const r = await status();
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`deployment/web +${ns}\\.web +3 `));

    const closed = await freePort();
    expect(cp.apply(backendSecret({ KUEUER_BACKEND: amqpUrl, KUEUER_RABBITMQ_MANAGEMENT_URL: `http://guest:guest@127.0.0.1:${closed}` })).code).toBe(0);
    const wrong = await status();
    expect(wrong.code, wrong.stderr).toBe(0);
    expect(wrong.stdout).toContain(
      `deployment/web: backlog unknown: the broker did not answer for ${ns}.web: RabbitMQ's management API at http://127.0.0.1:${closed} did not answer: connection refused: nothing listens on that port (ECONNREFUSED); ` +
        "set KUEUER_RABBITMQ_MANAGEMENT_URL (in the broker Secret, or --rabbitmq-management-url) to RabbitMQ's management API, e.g. http://USER:PASS@HOST:15672",
    );
    expect(wrong.stdout).not.toContain('guest');
    expect(cp.apply(backendSecret({ KUEUER_BACKEND: amqpUrl })).code).toBe(0);
  }, 60_000);

  it('shows the backlog as unknown, with why, when the broker cannot be read', async () => {
    const closed = await freePort();
    const r = await status('--backend', `amqp://guest:guest@127.0.0.1:${closed}`, '--rabbitmq-management-url', `http://127.0.0.1:${closed}`);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`deployment/web +${ns}\\.web +unknown `));
    expect(r.stdout).toContain(`deployment/web: backlog unknown: the broker did not answer for ${ns}.web: `);
  }, 60_000);

  it('as a user who may read one namespace only: a clear refusal without --namespace; with it, that namespace, and the unreadable one named', async () => {
    // A ServiceAccount with a Role in ns alone (what a team's kubeconfig often is): no namespace list, nothing elsewhere.
    const other = `${ns}-other`;
    const rbac = [
      `apiVersion: v1\nkind: Namespace\nmetadata: {name: ${other}, labels: {kueuer.io/injection: enabled}}\n`,
      `apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: team, namespace: ${ns}}\n`,
      `apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: team-read, namespace: ${ns}}\nrules:\n` +
        `  - {apiGroups: [apps], resources: [deployments, statefulsets], verbs: [list]}\n` +
        `  - {apiGroups: [""], resources: [pods], verbs: [list]}\n` +
        `  - {apiGroups: [autoscaling], resources: [horizontalpodautoscalers], verbs: [get]}\n`,
      `apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: team-read, namespace: ${ns}}\n` +
        `roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: team-read}\nsubjects: [{kind: ServiceAccount, name: team, namespace: ${ns}}]\n`,
    ];
    const applied = cp.apply(rbac.join('---\n'));
    expect(applied.code, applied.stderr).toBe(0);
    const asTeam = { KUBECONFIG: cp.kubeconfigAs(ns, 'team') };
    const backend = ['--backend', amqpUrl, '--rabbitmq-management-url', managementUrl];

    const refused = await runKueuer(['status', ...backend], asTeam);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('FAIL this user may not list namespaces');
    expect(refused.stderr).toContain('fix: name them: kueuer status --namespace NS[,NS…]');

    const named = await runKueuer(['status', '--namespace', `${other},${ns}`, ...backend], asTeam);
    expect(named.code, named.stderr).toBe(0);
    expect(named.stdout).toMatch(new RegExp(`${ns} +deployment/web +${ns}\\.web +\\d+ +0/2 `));
    expect(named.stdout).toContain(
      `Not read:\n  ${other}: forbidden: this user may not list deployments.apps in namespace ${other} (kubectl auth can-i list deployments.apps -n ${other})`,
    );

    const badName = await runKueuer(['status', '--namespace', 'Not_A_Namespace'], asTeam);
    expect(badName.code).not.toBe(0);
    expect(badName.stderr).toContain('"Not_A_Namespace" is not a namespace name');
  }, 60_000);

  it("shows the asynchronous backlog of each Service with kueuer.io/async, read from the responders' Redis store (KUEUER_ASYNC_STORE of the Secret, or --async-store)", async () => {
    const service = `apiVersion: v1\nkind: Service\nmetadata: {name: reports, namespace: ${ns}, labels: {kueuer.io/inject: "true"}, annotations: {kueuer.io/async: always}}\nspec: {selector: {app: reports}, ports: [{port: 80, targetPort: 8080}]}\n`;
    const applied = cp.apply(service);
    expect(applied.code, applied.stderr).toBe(0);
    await waitFor(
      () => cp.getJson('service', '-n', ns, 'reports').metadata.annotations?.['kueuer.io/responder-port'] !== undefined,
      30_000,
      'a responder port',
    );
    // What the responders would have stored: three accepted, one of them answered; another Service's request apart.
    const store = new RedisAsyncStore(redisUrl, pino({ level: 'silent' }));
    await store.ready(10_000);
    const queue = `${ns}.reports`;
    const ids = ['1', '2', '3'].map((c) => c.repeat(32));
    for (const id of ids) await store.accept(queue, id, 300_000, undefined, undefined, Date.now() + 300_000);
    await store.accept(`${ns}.other`, ids[0]!, 300_000);
    expect(await store.complete(queue, ids[0]!, { status: 200, headers: [], body: Buffer.from('done') })).toBe(true);
    await store.close();
    const backendSecret = (data: Record<string, string>) =>
      `apiVersion: v1\nkind: Secret\nmetadata: {name: kueuer-backend, namespace: kueuer-system}\nstringData: ${JSON.stringify(data)}\n`;
    const backend = ['--rabbitmq-management-url', managementUrl];
    const rowOf = (out: string) =>
      out
        .split('\n')
        .find((l) => l.startsWith(`${ns}/reports `))
        ?.trim()
        .split(/\s{2,}/);
    try {
      expect(cp.apply(backendSecret({ KUEUER_BACKEND: amqpUrl, KUEUER_ASYNC_STORE: redisUrl })).code).toBe(0);
      const r = await status(...backend);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain(
        "\nAsynchronous requests: PENDING accepted and awaiting the app's answer, RESULTS stored and not yet expired or deleted\nSERVICE",
      );
      expect(r.stdout).toMatch(/\nSERVICE +QUEUE +ASYNC +PENDING +RESULTS\n/);
      expect(rowOf(r.stdout)).toEqual([`${ns}/reports`, queue, 'always', '2', '1']);

      const closed = await freePort();
      const down = await status(...backend, '--async-store', `redis://user:secret@127.0.0.1:${closed}`);
      expect(down.code, down.stderr).toBe(0);
      expect(rowOf(down.stdout)).toEqual([`${ns}/reports`, queue, 'always', 'unknown', 'unknown']);
      expect(down.stdout).toContain(`service/${ns}/reports: asynchronous backlog unknown: the store at redis://127.0.0.1:${closed} did not answer: `);
      expect(down.stdout).not.toContain('secret');

      // (kubectl apply does not remove a stringData key it applied before: set it.)
      expect(cp.apply(backendSecret({ KUEUER_BACKEND: amqpUrl, KUEUER_ASYNC_STORE: 'memory' })).code).toBe(0);
      const memory = await status(...backend);
      expect(rowOf(memory.stdout)).toEqual([`${ns}/reports`, queue, 'always', 'unknown', 'unknown']);
      expect(memory.stdout).toContain(
        `service/${ns}/reports: asynchronous backlog unknown: the responders keep asynchronous requests in their own memory (KUEUER_ASYNC_STORE in the Secret kueuer-system/kueuer-backend is memory, or not set)`,
      );
    } finally {
      expect(cp.apply(backendSecret({ KUEUER_BACKEND: amqpUrl, KUEUER_ASYNC_STORE: 'memory' })).code).toBe(0);
      expect(cp.kubectl(['delete', 'service', '-n', ns, 'reports']).code).toBe(0);
    }
  }, 60_000);

  it('does not wait for an unreachable Kafka: unknown within seconds', async () => {
    const closed = await freePort();
    const started = Date.now();
    const r = await status('--backend', `kafka://127.0.0.1:${closed}`);
    expect(r.code, r.stderr).toBe(0);
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(r.stdout).toMatch(new RegExp(`deployment/web +${ns}\\.web +unknown `));
    expect(r.stdout).toMatch(
      new RegExp(`deployment/web: backlog unknown: (cannot reach the broker|the broker did not answer for ${ns}\\.web): .*(ECONNREFUSED|no answer within)`),
    );
  }, 60_000);
});
