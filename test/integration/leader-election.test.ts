/**
 * Two webhook replicas against a real kube-apiserver (issue 14, item 7), as
 * their ServiceAccount with the shipped RBAC. Exactly one holds the Lease
 * kueuer-system/kueuer-webhook-controllers (kueuer_webhook_leader 1 there, 0
 * on the other) and alone writes autoscalers and Events; a leader stopped
 * with SIGTERM releases the Lease (the other leads within a retry period),
 * one killed with SIGKILL is replaced after the lease duration (15 s) plus at
 * most one retry period (2 s).
 * Admission stays on both. Services admitted at the same moment by both
 * replicas (and through the apiserver) whose names prefer the same responder
 * port all get distinct ports: the ConfigMap kueuer-responder-ports is
 * written with optimistic concurrency.
 */
import { randomUUID } from 'node:crypto';
import { spawn } from 'node:child_process';
import https from 'node:https';
import { join } from 'node:path';
import { dumpYaml, loadAllYaml } from '@kubernetes/client-node';
import jsonpatch from 'fast-json-patch';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { allocateResponderPort } from '../../webhook/admission/service-rewrite.js';
import { startControlPlane, type ControlPlane, type KubeJson } from '../helpers/control-plane.js';
import { freePort } from '../helpers/net.js';
import { msgIs, spawnKueuer, type KueuerProcess } from '../helpers/processes.js';
import { waitFor } from '../helpers/stack.js';
import { generateCerts, httpsJson, review } from '../helpers/webhook.js';
import { readFileSync } from 'node:fs';

const root = join(import.meta.dirname, '..', '..');
const RESPONDER_PORT = 'kueuer.io/responder-port';

interface Replica {
  process: KueuerProcess;
  base: string;
}

describe('two webhook replicas: one leader, safe port allocation', () => {
  let cp: ControlPlane;
  let asWebhook = '';
  const certs = generateCerts();
  const replicas: Replica[] = [];

  const startReplica = async (): Promise<Replica> => {
    const port = await freePort();
    const process = spawnKueuer(
      ['webhook', '--cert-source', 'secret', '--tls-cert', certs.cert, '--tls-key', certs.key, '--listen', `127.0.0.1:${port}`, '--autoscaling', 'external'],
      { KUBECONFIG: asWebhook },
    );
    await process.waitForLog(msgIs('webhook ready'), 60_000);
    const replica = { process, base: `https://127.0.0.1:${port}` };
    replicas.push(replica);
    return replica;
  };

  const leaderGauge = (r: Replica): Promise<number> =>
    new Promise((resolve, reject) => {
      https
        .get(`${r.base}/metrics`, { ca: certs.ca }, (res) => {
          let text = '';
          res.on('data', (c: Buffer) => (text += c.toString()));
          res.on('end', () => resolve(Number(/^kueuer_webhook_leader (\d+)$/m.exec(text)?.[1] ?? NaN)));
        })
        .on('error', reject);
    });
  const alive = () => replicas.filter((r) => r.process.child.exitCode === null && r.process.child.signalCode === null);
  const leaders = async () => {
    const out: Replica[] = [];
    for (const r of alive()) if ((await leaderGauge(r)) === 1) out.push(r);
    return out;
  };
  const holder = (): string => cp.getJson('lease', 'kueuer-webhook-controllers', '-n', 'kueuer-system').spec.holderIdentity as string;
  const identityOf = (r: Replica): string | undefined =>
    r.process.logs
      .filter((l) => l.msg === 'became the leader')
      .map((l) => l.identity as string)
      .pop();

  const events = (name: string, reason: string): KubeJson[] =>
    (cp.getJson('events', '-n', 'shop', '--field-selector', `involvedObject.name=${name}`).items as KubeJson[]).filter((e) => e.reason === reason);
  const deployment = (name: string) =>
    dumpYaml({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name, namespace: 'shop' },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: name } },
        template: { metadata: { labels: { app: name, 'kueuer.io/inject': 'true' } }, spec: { containers: [{ name: 'app', image: 'example.com/app:1' }] } },
      },
    });

  beforeAll(async () => {
    cp = await startControlPlane(inject('k8sBinDir'));
    for (const f of ['manifests/base/namespace.yaml', 'manifests/base/rbac.yaml', 'manifests/base/autoscaling/rbac.yaml']) {
      const r = cp.kubectl(['apply', '-f', join(root, f)]);
      expect(r.stderr).toBe('');
    }
    expect(cp.apply(dumpYaml({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop', labels: { 'kueuer.io/injection': 'enabled' } } })).code).toBe(0);
    asWebhook = cp.kubeconfigAs('kueuer-system', 'kueuer-webhook');
    await startReplica();
    await startReplica();
  }, 5 * 60_000);

  afterAll(async () => {
    for (const r of replicas) r.process.child.kill('SIGKILL');
    await cp?.stop();
  }, 60_000);

  it('exactly one replica leads: the Lease names it, its kueuer_webhook_leader is 1 and the other is 0', async () => {
    await waitFor(async () => (await leaders()).length === 1, 20_000, 'one leader');
    const [leader] = await leaders();
    expect(holder()).toBe(identityOf(leader!));
    const gauges = await Promise.all(replicas.map(leaderGauge));
    expect(gauges.sort()).toEqual([0, 1]);
  });

  it('only the leader writes: one HPA and one KueuerAutoscalerCreated Event for an opted-in Deployment', async () => {
    expect(cp.apply(deployment('web')).code).toBe(0);
    await waitFor(() => cp.tryGetJson('hpa', 'kueuer-deploy-web', '-n', 'shop') !== null, 30_000, 'the HPA').catch((err: unknown) => {
      for (const r of replicas) console.log(r.process.logs.filter((l) => (l.level as number) >= 40 || /lead|autoscal/.test(String(l.msg))));
      throw err;
    });
    await waitFor(() => events('web', 'KueuerAutoscalerCreated').length > 0, 30_000, 'the Event');
    // Both replicas have reconciled a few times by now (every change, and on becoming leader).
    await new Promise((r) => setTimeout(r, 3000));
    expect(events('web', 'KueuerAutoscalerCreated')).toHaveLength(1);
    expect(events('web', 'KueuerAutoscalerCreated')[0]!.count ?? 1).toBe(1);
    // A second writer would have found the HPA taken and said so.
    expect(events('web', 'KueuerAutoscalerRefused')).toEqual([]);
  });

  it('a leader stopped with SIGTERM releases the Lease and the other replica leads within a retry period', async () => {
    const [leader] = await leaders();
    const started = Date.now();
    leader!.process.child.kill('SIGTERM');
    await leader!.process.exited;
    const [next] = alive();
    await next!.process.waitForLog(msgIs('became the leader'), 15_000);
    const ms = Date.now() - started;
    console.log(`leader election: SIGTERM handover in ${ms} ms`);
    expect(ms).toBeLessThan(5000);
    expect(holder()).toBe(identityOf(next!));
    expect(await leaderGauge(next!)).toBe(1);
  }, 30_000);

  it('a leader killed with SIGKILL is replaced once its Lease has gone unrenewed for the lease duration (15 s, plus at most a 2 s retry), and the new leader writes', async () => {
    const follower = await startReplica();
    expect(await leaderGauge(follower)).toBe(0);
    const [leader] = await leaders();
    const started = Date.now();
    leader!.process.child.kill('SIGKILL');
    await follower.process.waitForLog(msgIs('became the leader'), 30_000);
    const ms = Date.now() - started;
    console.log(`leader election: SIGKILL handover in ${ms} ms`);
    expect(ms).toBeLessThan(15_000 + 2_000 + 2_000); // lease duration + one retry period + a request's time
    expect(holder()).toBe(identityOf(follower));
    expect(cp.apply(deployment('api')).code).toBe(0);
    await waitFor(() => cp.tryGetJson('hpa', 'kueuer-deploy-api', '-n', 'shop') !== null, 30_000, 'the HPA from the new leader');
    await waitFor(() => events('api', 'KueuerAutoscalerCreated').length === 1, 30_000, 'its Event');
  }, 60_000);

  it('Services admitted at once by both replicas and through the apiserver get distinct responder ports, even when their names prefer the same one', async () => {
    // Two live replicas: start another beside the leader.
    await startReplica();
    const [a, b] = alive();
    // Names whose first-choice port is the same: without a reservation each replica would hand it to all of them.
    const names: string[] = [];
    const preferred = allocateResponderPort('shop/svc-0', undefined, new Set());
    for (let i = 0; names.length < 12; i++) if (allocateResponderPort(`shop/svc-${i}`, undefined, new Set()) === preferred) names.push(`svc-${i}`);

    // Through the apiserver: the shipped configuration pointed at replica a (as envtest does).
    const [config] = loadAllYaml(readFileSync(join(root, 'manifests/base/webhook/mutating-webhook-configuration.yaml'), 'utf8')) as KubeJson[];
    for (const w of config!.webhooks) w.clientConfig = { url: `${a!.base}/mutate`, caBundle: certs.ca.toString('base64') };
    expect(cp.apply(dumpYaml(config)).code).toBe(0);
    const service = (name: string): KubeJson => ({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name, namespace: 'shop', labels: { 'kueuer.io/inject': 'true' } },
      spec: { selector: { app: name }, ports: [{ name: 'http', port: 80, targetPort: 8080 }] },
    });
    const viaApiserver = (name: string) =>
      new Promise<number>((resolve, reject) => {
        const child = spawn(join(cp.binDir, 'kubectl'), [`--kubeconfig=${cp.kubeconfig}`, 'create', '-o', 'json', '-f', '-'], {
          stdio: ['pipe', 'pipe', 'pipe'],
        });
        let out = '';
        let err = '';
        child.stdout.on('data', (c: Buffer) => (out += c.toString()));
        child.stderr.on('data', (c: Buffer) => (err += c.toString()));
        child.on('exit', (code) => (code === 0 ? resolve(Number((JSON.parse(out) as KubeJson).metadata.annotations[RESPONDER_PORT])) : reject(new Error(err))));
        child.stdin.end(JSON.stringify(service(name)));
      });
    const direct = async (replica: Replica, name: string): Promise<number> => {
      const body = review(service(name), { kind: 'Service', uid: randomUUID() });
      const res = await httpsJson(replica.base, '/mutate', certs.ca, JSON.stringify(body));
      const response = (res.json as { response: { allowed: boolean; patch?: string; status?: { message: string } } }).response;
      if (!response.allowed) throw new Error(response.status?.message);
      const patched = jsonpatch.applyPatch(
        structuredClone(service(name)),
        JSON.parse(Buffer.from(response.patch!, 'base64').toString()) as jsonpatch.Operation[],
      ).newDocument;
      return Number((patched.metadata as KubeJson).annotations[RESPONDER_PORT]);
    };
    const ports = await Promise.all(names.map((name, i) => (i % 3 === 0 ? viaApiserver(name) : direct(i % 3 === 1 ? a! : b!, name))));
    console.log(`port allocation: ${names.length} Services preferring port ${preferred} got ${new Set(ports).size} distinct ports`);
    expect(new Set(ports).size).toBe(names.length);
    const reservations = cp.getJson('configmap', 'kueuer-responder-ports', '-n', 'kueuer-system').data as Record<string, string>;
    expect(Object.keys(reservations).map(Number).sort()).toEqual([...ports].sort());
  }, 60_000);
});
