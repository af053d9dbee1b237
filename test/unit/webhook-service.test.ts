/**
 * What a request changes on a queued Service is the user's new intent
 * (issue 12, item 13): the decision compares the AdmissionReview's object
 * with its oldObject, so a selector or target port the request itself sets
 * is never replaced by the saved pre-queue record, and a target port changed
 * while queued is recorded for the restore.
 */
import type { V1Service } from '@kubernetes/client-node';
import jsonpatch, { type Operation } from 'fast-json-patch';
import { describe, expect, it } from 'vitest';
import type { AdmissionRequest } from '../../webhook/admission/admission-review.js';
import { mutate } from '../../webhook/admission/mutate.js';
import { userChanges } from '../../webhook/admission/service-rewrite.js';
import { JobWorkloads } from '../../webhook/admission/workload-queue.js';
import { silentLog } from '../helpers/stack.js';
import { testInjectionConfig } from '../helpers/webhook.js';

const RESPONDER_PORT = 24817;
const noJobs = new JobWorkloads(() => Promise.reject(new Error('no Jobs here')));

/** A Service as the webhook left it while queued: no selector, every port on the responder port. */
function queued(): V1Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name: 'web',
      namespace: 'shop',
      labels: { 'kueuer.io/inject': 'true' },
      annotations: {
        'kueuer.io/timeout': '30s',
        'kueuer.io/original-service': JSON.stringify({ selector: { app: 'web' }, targetPorts: [{ port: 80, targetPort: 'http' }] }),
        'kueuer.io/responder-port': String(RESPONDER_PORT),
      },
    },
    spec: { ports: [{ name: 'http', port: 80, targetPort: RESPONDER_PORT as never, protocol: 'TCP' }] },
  };
}

async function admit(object: V1Service, oldObject?: V1Service): Promise<{ allowed: boolean; message?: string; object: V1Service }> {
  const request: AdmissionRequest = {
    uid: 'u',
    kind: { group: '', version: 'v1', kind: 'Service' },
    namespace: 'shop',
    operation: oldObject ? 'UPDATE' : 'CREATE',
    object,
    ...(oldObject ? { oldObject } : {}),
  };
  const { response } = await mutate(request, testInjectionConfig, { usedPorts: () => new Set() }, noJobs, silentLog);
  const patch = response.patch ? (JSON.parse(Buffer.from(response.patch, 'base64').toString()) as Operation[]) : [];
  const patched = jsonpatch.applyPatch(structuredClone(object), patch, true, false).newDocument;
  return { allowed: response.allowed, message: response.status?.message, object: patched };
}

const without = (s: V1Service, ...keys: string[]): V1Service => {
  const c = structuredClone(s);
  for (const k of keys) {
    delete c.metadata!.annotations![k];
    delete c.metadata!.labels?.[k];
  }
  return c;
};
const original = (s: V1Service) => JSON.parse(s.metadata!.annotations!['kueuer.io/original-service']!) as unknown;

describe('restoring a Service: the request wins over the saved record', () => {
  it('restores the saved selector and target port when the request only removes the kueuer.io/inject label', async () => {
    const r = await admit(without(queued(), 'kueuer.io/inject'), queued());
    expect(r.object.spec!.selector).toEqual({ app: 'web' });
    expect(r.object.spec!.ports![0]!.targetPort).toBe('http');
    expect(r.object.metadata!.annotations).toEqual({ 'kueuer.io/timeout': '30s' });
  });

  it('keeps a target port and a selector the same request sets (client-side apply of the unqueued manifest)', async () => {
    const request = without(queued(), 'kueuer.io/inject');
    request.spec!.selector = { app: 'web-v2' };
    request.spec!.ports![0]!.targetPort = 8080 as never;
    const r = await admit(request, queued());
    expect(r.object.spec!.selector).toEqual({ app: 'web-v2' });
    expect(r.object.spec!.ports![0]!.targetPort).toBe(8080);
    expect(r.object.metadata!.annotations?.['kueuer.io/original-service']).toBeUndefined();
  });

  it('restores from the old object when the request also drops the annotations Kueuer wrote (server-side apply)', async () => {
    const request = without(queued(), 'kueuer.io/inject', 'kueuer.io/original-service', 'kueuer.io/responder-port');
    request.spec!.ports![0]!.targetPort = 8080 as never;
    const r = await admit(request, queued());
    expect(r.object.spec!.selector).toEqual({ app: 'web' });
    expect(r.object.spec!.ports![0]!.targetPort).toBe(8080);
  });

  it('is idempotent on reinvocation (the object is already restored, oldObject is still the queued one)', async () => {
    const request = without(queued(), 'kueuer.io/inject');
    request.spec!.ports![0]!.targetPort = 8080 as never;
    const first = await admit(request, queued());
    const again = await admit(first.object, queued());
    expect(again.object).toEqual(first.object);
  });
});

describe('a queued Service: user changes are recorded for the restore', () => {
  it('records a target port changed while queued, and keeps the live port on the responder', async () => {
    const request = queued();
    request.spec!.ports![0]!.targetPort = 8080 as never;
    const r = await admit(request, queued());
    expect(r.allowed).toBe(true);
    expect(r.object.spec!.ports![0]!.targetPort).toBe(RESPONDER_PORT);
    expect(original(r.object)).toEqual({ selector: { app: 'web' }, targetPorts: [{ port: 80, targetPort: 8080 }] });
    // …and removing the label later gives it back.
    const restored = await admit(without(r.object, 'kueuer.io/inject'), r.object);
    expect(restored.object.spec!.ports![0]!.targetPort).toBe(8080);
    expect(restored.object.spec!.selector).toEqual({ app: 'web' });
  });

  it('records a selector set while queued (client-side apply of the queued manifest) and removes it from the live spec', async () => {
    const request = queued();
    request.spec!.selector = { app: 'web-v2' };
    const r = await admit(request, queued());
    expect(r.object.spec!.selector).toBeUndefined();
    expect(original(r.object)).toEqual({ selector: { app: 'web-v2' }, targetPorts: [{ port: 80, targetPort: 'http' }] });
  });

  it('records a port added while queued', async () => {
    const request = queued();
    request.spec!.ports!.push({ name: 'admin', port: 81, targetPort: 9000 as never, protocol: 'TCP' });
    const r = await admit(request, queued());
    expect(r.object.spec!.ports!.map((p) => p.targetPort)).toEqual([RESPONDER_PORT, RESPONDER_PORT]);
    expect(original(r.object)).toEqual({
      selector: { app: 'web' },
      targetPorts: [
        { port: 80, targetPort: 'http' },
        { port: 81, targetPort: 9000 },
      ],
    });
  });

  it('keeps the saved record when the request changes nothing it covers, and is idempotent', async () => {
    const r = await admit(queued(), queued());
    expect(r.object).toEqual(queued());
  });
});

describe('userChanges', () => {
  it('counts nothing as changed without an old object (CREATE), and only what differs from it on UPDATE', () => {
    const request = queued();
    request.spec!.ports![0]!.targetPort = 8080 as never;
    expect(userChanges(request, undefined)).toEqual({ targetPorts: new Map() });
    expect(userChanges(request, queued())).toEqual({ targetPorts: new Map([[80, 8080]]) });
    expect(userChanges(queued(), queued())).toEqual({ targetPorts: new Map() });
  });
});
