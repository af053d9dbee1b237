/**
 * A refused pod raises an Event on its workload, not only the ReplicaSet's
 * FailedCreate: the real `kueuer webhook` process behind a real kube-apiserver,
 * whose ReplicaSet controller creates the pods.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { dumpYaml } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { workloadOfPod } from '../../webhook/admission/refusal-events.js';
import { startControlPlane, type ControlPlane, type KubeJson } from '../helpers/control-plane.js';
import type { KueuerProcess } from '../helpers/processes.js';
import { waitFor } from '../helpers/stack.js';
import { startWebhookProcess } from '../helpers/webhook-process.js';

/** The CLI (dist/) with `input` on stdin. */
function runKueuerWithInput(args: string[], input: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const r = spawnSync(process.execPath, [join(import.meta.dirname, '..', '..', 'bin', 'kueuer.js'), ...args], { input, encoding: 'utf8' });
  return Promise.resolve({ code: r.status, stdout: r.stdout, stderr: r.stderr });
}

describe('refused pods: an Event on the workload', () => {
  let cp: ControlPlane;
  let webhook: KueuerProcess;

  beforeAll(async () => {
    cp = await startControlPlane(inject('k8sBinDir'));
    const started = await startWebhookProcess(cp);
    webhook = started.process;
    const r = cp.apply(
      [
        dumpYaml(started.configuration),
        'apiVersion: v1\nkind: Namespace\nmetadata: {name: kueuer-system}\n',
        'apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {kueuer.io/injection: enabled}}\n',
        `apiVersion: apps/v1
kind: Deployment
metadata: {name: bad, namespace: shop}
spec:
  replicas: 1
  selector: {matchLabels: {app: bad}}
  template:
    metadata:
      labels: {app: bad, kueuer.io/inject: "true"}
      annotations: {kueuer.io/concurrency: lots}
    spec:
      containers: [{name: app, image: example.com/bad:1, ports: [{containerPort: 8080}]}]
`,
      ].join('---\n'),
    );
    expect(r.code, r.stderr).toBe(0);
  }, 5 * 60_000);

  afterAll(async () => {
    webhook?.child.kill('SIGKILL');
    await cp?.stop();
  }, 60_000);

  it('the Deployment gets a Warning KueuerRefusedPod naming the annotation, once, and kubectl describe shows it', async () => {
    const uid = cp.getJson('deployment', '-n', 'shop', 'bad').metadata.uid as string;
    let events: KubeJson[] = [];
    await waitFor(
      () => {
        events = cp.getJson('events', '-n', 'shop', '--field-selector', 'involvedObject.kind=Deployment,involvedObject.name=bad,reason=KueuerRefusedPod')
          .items as KubeJson[];
        return events.length > 0;
      },
      30_000,
      'an Event on deployment/bad',
    );
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      type: 'Warning',
      reason: 'KueuerRefusedPod',
      involvedObject: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'bad', uid },
      source: { component: 'kueuer' },
    });
    expect(events[0]!.message).toBe('kueuer: kueuer.io/concurrency: expected an integer from 1 to 1000, got "lots"');
    // The ReplicaSet's own FailedCreate is still there; no pod was stored.
    const rsEvents = cp.getJson('events', '-n', 'shop', '--field-selector', 'involvedObject.kind=ReplicaSet,reason=FailedCreate').items as KubeJson[];
    expect(rsEvents.length).toBeGreaterThan(0);
    expect(cp.getJson('pods', '-n', 'shop').items).toEqual([]);
    const described = cp.kubectl(['describe', 'deployment', '-n', 'shop', 'bad']);
    expect(described.stdout).toMatch(/Warning\s+KueuerRefusedPod\s+.*kueuer\.io\/concurrency/);
  }, 60_000);

  it("kueuer inject's output is valid to the apiserver (server-side dry run, strict validation)", async () => {
    const input = readFileSync(join(import.meta.dirname, '..', 'golden', 'inject', 'deployment-service-cronjob.input.yaml'), 'utf8');
    const injected = await runKueuerWithInput(['inject', '-f', '-'], input);
    expect(injected.code, injected.stderr).toBe(0);
    const r = cp.kubectl(['apply', '--dry-run=server', '--validate=strict', '-f', '-'], injected.stdout);
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('deployment.apps/web created (server dry run)');
    expect(r.stdout).toContain('cronjob.batch/nightly created (server dry run)');
  });

  it('a server-side dry run (kubectl --dry-run=server) leaves no Event and no responder-port reservation; the same requests for real do (issue 22, item 14)', async () => {
    const ownerUid = 'c0ffee00-0000-4000-8000-000000000022';
    const pod = (name: string, concurrency: string) => `apiVersion: v1
kind: Pod
metadata:
  name: ${name}
  namespace: shop
  labels: {kueuer.io/inject: "true"}
  annotations: {kueuer.io/concurrency: ${concurrency}}
  ownerReferences: [{apiVersion: apps/v1, kind: StatefulSet, name: db, uid: ${ownerUid}, controller: true}]
spec:
  containers: [{name: app, image: example.com/db:1, ports: [{containerPort: 8080}]}]
`;
    const service = (name: string) => `apiVersion: v1
kind: Service
metadata: {name: ${name}, namespace: shop, labels: {kueuer.io/inject: "true"}}
spec:
  selector: {app: ${name}}
  ports: [{name: http, port: 80, targetPort: 8080}]
`;
    const events = () =>
      (
        cp.getJson('events', '-n', 'shop', '--field-selector', 'involvedObject.kind=StatefulSet,involvedObject.name=db,reason=KueuerRefusedPod')
          .items as KubeJson[]
      ).map((e) => e.message as string);
    const reservations = (): Record<string, string> => {
      const r = cp.kubectl(['get', 'configmap', '-n', 'kueuer-system', 'kueuer-responder-ports', '-o', 'json']);
      return r.code === 0 ? (((JSON.parse(r.stdout) as KubeJson).data as Record<string, string> | undefined) ?? {}) : {};
    };
    const holders = () => Object.values(reservations()).map((v) => v.split(' ')[0]);

    // Dry runs: refused the same way, answered with a port, nothing written.
    const dryPod = cp.kubectl(['create', '--dry-run=server', '-f', '-'], pod('dry-pod', 'lots'));
    expect(dryPod.code).not.toBe(0);
    expect(dryPod.stderr).toContain('kueuer: kueuer.io/concurrency: expected an integer from 1 to 1000, got "lots"');
    const drySvc = cp.kubectl(['create', '--dry-run=server', '-o', 'json', '-f', '-'], service('web-svc'));
    expect(drySvc.code, drySvc.stderr).toBe(0);
    const dryPort = ((JSON.parse(drySvc.stdout) as KubeJson).metadata.annotations as Record<string, string>)['kueuer.io/responder-port'];
    expect(dryPort).toMatch(/^\d+$/);
    // A reservation is written before the answer, so its absence now is final.
    expect(holders()).not.toContain('shop/web-svc');

    // The same for real: the Event and the reservation appear, so their absence is not a slow write.
    const wetPod = cp.kubectl(['create', '-f', '-'], pod('wet-pod', 'many'));
    expect(wetPod.code).not.toBe(0);
    const wetSvc = cp.kubectl(['create', '-f', '-'], service('web-svc'));
    expect(wetSvc.code, wetSvc.stderr).toBe(0);
    expect(holders()).toContain('shop/web-svc');
    await waitFor(() => events().length > 0, 30_000, 'the real Event');
    await new Promise((r) => setTimeout(r, 1000));
    expect(events()).toEqual(['kueuer: kueuer.io/concurrency: expected an integer from 1 to 1000, got "many"']);
    // The dry run answered with the port the real admission then reserved.
    const wetPort = (cp.getJson('service', '-n', 'shop', 'web-svc').metadata.annotations as Record<string, string>)['kueuer.io/responder-port'];
    expect(wetPort).toBe(dryPort);
  }, 90_000);

  it("names the workload from the pod's owner", () => {
    const owner = (kind: string, name: string) => ({ apiVersion: kind === 'Job' ? 'batch/v1' : 'apps/v1', kind, name, uid: `uid-${name}`, controller: true });
    expect(workloadOfPod({ labels: { 'pod-template-hash': '5d8c7' }, ownerReferences: [owner('ReplicaSet', 'web-5d8c7')] }, 'shop')).toEqual({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      name: 'web',
      namespace: 'shop',
    });
    expect(workloadOfPod({ ownerReferences: [owner('StatefulSet', 'db')] }, 'shop')).toMatchObject({ kind: 'StatefulSet', name: 'db', uid: 'uid-db' });
    expect(workloadOfPod({ ownerReferences: [owner('Job', 'nightly-290')] }, 'shop')).toMatchObject({ kind: 'Job', name: 'nightly-290' });
    expect(workloadOfPod({ ownerReferences: [owner('ReplicaSet', 'bare-rs')] }, 'shop')).toMatchObject({
      kind: 'ReplicaSet',
      name: 'bare-rs',
      uid: 'uid-bare-rs',
    });
  });
});
