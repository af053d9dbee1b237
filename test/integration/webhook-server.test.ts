/** The webhook's HTTPS server: refusals, malformed input, re-admission after defaulting, certificate rotation. */
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import jsonpatch, { type Operation } from 'fast-json-patch';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusterServices, generateCerts, httpsJson, review, startWebhook, type RunningWebhook } from '../helpers/webhook.js';
import { waitFor } from '../helpers/stack.js';

const basePod = () => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { generateName: 'api-', labels: { 'kueuer.io/inject': 'true' }, annotations: {} as Record<string, string> },
  spec: { containers: [{ name: 'app', image: 'example.com/api:1', ports: [{ containerPort: 8080, name: 'http' }] }] },
});

type Review = { response: { allowed: boolean; uid: string; patch?: string; status?: { message: string; code: number } } };

describe('webhook server', () => {
  let hook: RunningWebhook;
  beforeAll(async () => {
    hook = await startWebhook();
  });
  afterAll(async () => hook.close());

  it.each([
    ['kueuer.io/inject', 'yes', 'kueuer.io/inject: "yes" is not accepted; use "true" or "false"'],
    ['kueuer.io/app-port', '0', 'kueuer.io/app-port: "0" is not accepted; use a port number from 1 to 65535 or a container port name'],
    ['kueuer.io/app-port', 'grpc', 'kueuer.io/app-port: no container declares a port named "grpc"'],
    ['kueuer.io/queue', 'my queue', 'kueuer.io/queue: "my queue" is not accepted'],
    [
      'kueuer.io/backend',
      'amqp://user:secret@rabbit:5672',
      'kueuer.io/backend: names the Secret that holds the broker settings; broker URLs and credentials never go in annotations',
    ],
    ['kueuer.io/backend', 'Not_A_Name', 'kueuer.io/backend: "Not_A_Name" is not accepted; use the name of a Secret'],
    ['kueuer.io/concurrency', '0', 'kueuer.io/concurrency: expected an integer from 1 to 1000, got "0"'],
    ['kueuer.io/concurrency', 'many', 'kueuer.io/concurrency: expected an integer from 1 to 1000, got "many"'],
    ['kueuer.io/native-sidecar', 'maybe', 'kueuer.io/native-sidecar: "maybe" is not accepted; use "true" or "false"'],
    ['kueuer.io/sidecar-cpu-request', 'lots', 'kueuer.io/sidecar-cpu-request: "lots" is not accepted; use a Kubernetes quantity'],
    ['kueuer.io/sidecar-memory-request', '64 MB', 'kueuer.io/sidecar-memory-request: "64 MB" is not accepted'],
    ['kueuer.io/sidecar-cpu-limit', '-1', 'kueuer.io/sidecar-cpu-limit: "-1" is not accepted'],
    ['kueuer.io/sidecar-memory-limit', '1GB!', 'kueuer.io/sidecar-memory-limit: "1GB!" is not accepted'],
    ['kueuer.io/timeout', '30s', 'kueuer.io/timeout: set it on the Service'],
  ])('refuses %s=%s, naming the annotation and what it accepts', async (key, value, message) => {
    const pod = basePod();
    pod.metadata.annotations[key] = value;
    const res = await hook.post(review(pod));
    expect(res.status).toBe(200);
    const response = (res.json as Review).response;
    expect(response.allowed).toBe(false);
    expect(response.status?.code).toBe(400);
    expect(response.status?.message).toContain(message);
    expect(response.status?.message.startsWith('kueuer: ')).toBe(true);
    expect(response.patch).toBeUndefined();
  });

  it('lists every bad annotation of a pod at once', async () => {
    const pod = basePod();
    Object.assign(pod.metadata.annotations, { 'kueuer.io/concurrency': 'x', 'kueuer.io/queue': '!' });
    const message = ((await hook.post(review(pod))).json as Review).response.status?.message ?? '';
    expect(message).toContain('kueuer.io/concurrency');
    expect(message).toContain('kueuer.io/queue');
  });

  it('produces no patch when re-admitting a pod the apiserver has defaulted since', async () => {
    const pod = basePod();
    const first = (await hook.post(review(pod))).json as Review;
    const patch = JSON.parse(Buffer.from(first.response.patch!, 'base64').toString()) as Operation[];
    const injected = jsonpatch.applyPatch(structuredClone(pod), patch).newDocument as ReturnType<typeof basePod> & {
      spec: { initContainers: Array<Record<string, unknown>> };
    };
    // What defaulting adds to a container between two webhook calls.
    const sidecar = injected.spec.initContainers[0]!;
    Object.assign(sidecar, { imagePullPolicy: 'IfNotPresent', terminationMessagePath: '/dev/termination-log', terminationMessagePolicy: 'File' });
    Object.assign(sidecar.readinessProbe as object, { timeoutSeconds: 1, successThreshold: 1, failureThreshold: 3 });
    Object.assign((sidecar.readinessProbe as { httpGet: object }).httpGet, { scheme: 'HTTP' });
    const again = (await hook.post(review(injected))).json as Review;
    expect(again.response.allowed).toBe(true);
    expect(again.response.patch).toBeUndefined();
  });

  it('gives a Service a responder port no other Service holds', async () => {
    const svc = (name: string) => ({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name, namespace: 'shop', labels: { 'kueuer.io/inject': 'true' }, annotations: {} as Record<string, string> },
      spec: { selector: { app: name }, ports: [{ name: 'http', port: 80, targetPort: 8080 }] },
    });
    const portOf = async (name: string): Promise<string> => {
      const r = (await hook.post(review(svc(name), { kind: 'Service' }))).json as Review;
      const patch = JSON.parse(Buffer.from(r.response.patch!, 'base64').toString()) as Operation[];
      const patched = jsonpatch.applyPatch(svc(name), patch).newDocument;
      return patched.metadata.annotations['kueuer.io/responder-port']!;
    };
    const preferred = await portOf('web');
    const holder = svc('other');
    holder.metadata.annotations['kueuer.io/responder-port'] = preferred;
    clusterServices.set([holder as never]);
    try {
      const next = await portOf('web');
      expect(next).not.toBe(preferred);
      expect(Number(next)).toBeGreaterThanOrEqual(20000);
    } finally {
      clusterServices.set([]);
    }
  });

  it('refuses, never allows, when building the patch fails', async () => {
    const broken = { ...basePod(), spec: { containers: 'not-a-list' } };
    const res = (await hook.post(review(broken))).json as Review;
    expect(res.response.allowed).toBe(false);
    expect(res.response.status?.code).toBe(500);
    expect(res.response.status?.message).toMatch(/^kueuer: internal error while building the patch/);
    expect(res.response.patch).toBeUndefined();
  });

  it('answers 400 to a body that is not JSON, and keeps serving', async () => {
    const res = await hook.post('{"apiVersion": "admission.k8s.io/v1", "kind": ', 'application/json');
    expect(res.status).toBe(400);
    expect((await hook.post(review(basePod()))).status).toBe(200);
  });

  it.each([
    ['an array', []],
    ['another kind', { apiVersion: 'v1', kind: 'Pod' }],
    ['v1beta1', { apiVersion: 'admission.k8s.io/v1beta1', kind: 'AdmissionReview', request: { uid: 'x', kind: { kind: 'Pod' } } }],
    ['no request', { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }],
    ['no uid', { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { kind: { kind: 'Pod' } } }],
  ])('answers 400 with a reason to %s', async (_name, body) => {
    const res = await hook.post(body);
    expect(res.status).toBe(400);
    expect(res.json.error).toBe('bad_admission_review');
    expect(typeof res.json.message).toBe('string');
  });

  it('answers 415 to a body that is not JSON at all', async () => {
    expect((await hook.post('kind: AdmissionReview', 'application/yaml')).status).toBe(415);
  });

  it('allows objects of kinds it does not handle, unchanged', async () => {
    const res = await hook.post(review({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x' } }, { kind: 'ConfigMap' }));
    expect((res.json as Review).response).toEqual({ uid: 'e911857d-c318-11e8-bbad-025000000001', allowed: true });
  });

  it('serves /healthz, /readyz and /metrics', async () => {
    expect((await httpsJson(hook.url, '/healthz', hook.ca)).status).toBe(200);
    expect((await httpsJson(hook.url, '/readyz', hook.ca)).status).toBe(200);
    const metrics = await hook.registry.metrics();
    expect(metrics).toMatch(/kueuer_webhook_admissions_total\{kind="Pod",outcome="refused"\} [1-9]/);
    expect(metrics).toMatch(/kueuer_webhook_admissions_total\{kind="Pod",outcome="injected"\} [1-9]/);
    expect(metrics).toMatch(/kueuer_webhook_admissions_total\{kind="unknown",outcome="bad_request"\} [1-9]/);
  });

  it('reloads its certificate when the files change, without a restart', async () => {
    const before = await httpsJson(hook.url, '/healthz', hook.ca);
    const rotated = generateCerts();
    copyFileSync(join(rotated.dir, 'tls.key'), hook.certs.key);
    copyFileSync(join(rotated.dir, 'tls.crt'), hook.certs.cert);
    await waitFor(
      async () => {
        try {
          const after = await httpsJson(hook.url, '/healthz', rotated.ca);
          return after.status === 200 && after.peerFingerprint !== before.peerFingerprint;
        } catch {
          return false; // still the old certificate, signed by the old CA
        }
      },
      5000,
      'the new certificate to be served',
    );
    // The old CA no longer verifies the server.
    await expect(httpsJson(hook.url, '/healthz', hook.ca)).rejects.toThrow();
    expect(await hook.registry.metrics()).toMatch(/kueuer_webhook_tls_reloads_total\{result="ok"\} [1-9]/);
  });
});
