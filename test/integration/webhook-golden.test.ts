/**
 * Golden files for the admission webhook, in the style of Istio's injector
 * tests: each `<case>.input.json` (namespace, config overrides, object) goes
 * through the real HTTPS server; the patched object (or the refusal) must
 * equal `<case>.expected.json`. Every case is then admitted again, as
 * reinvocation would, and must produce no patch; the user's containers must
 * be byte-identical. UPDATE_GOLDEN=1 rewrites the expected files.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import jsonpatch, { type Operation } from 'fast-json-patch';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { drainHook, existingDrainToken, SIDECAR_NAME, type InjectionConfig } from '../../webhook/admission/pod-injection.js';
import type { V1ObjectMeta, V1Pod } from '@kubernetes/client-node';
import { clusterJobs, review, startWebhook, testInjectionConfig, type RunningWebhook } from '../helpers/webhook.js';

const dir = join(import.meta.dirname, '..', 'golden', 'webhook');
const cases = readdirSync(dir)
  .filter((f) => f.endsWith('.input.json'))
  .map((f) => f.replace('.input.json', ''))
  .sort();

interface GoldenInput {
  namespace: string;
  kind?: 'Pod' | 'Service';
  config?: Partial<InjectionConfig>;
  object: Record<string, unknown>;
  /** The stored object, for an UPDATE: what the request changes is compared with it. */
  oldObject?: Record<string, unknown>;
  /** Jobs in the "cluster" (their metadata), which the webhook reads for the queue of Job-owned pods. */
  jobs?: V1ObjectMeta[];
}

interface Outcome {
  allowed: boolean;
  message?: string;
  warnings?: string[];
  object?: Record<string, unknown>;
}

function decodePatch(response: Record<string, unknown>): Operation[] {
  if (response.patch === undefined) return [];
  expect(response.patchType).toBe('JSONPatch');
  return JSON.parse(Buffer.from(response.patch as string, 'base64').toString('utf8')) as Operation[];
}

/** The injected sidecar's admin port: where the app containers' drain hook calls. */
function adminPortOf(pod: Record<string, unknown>): number {
  const spec = (pod.spec ?? {}) as { containers?: Array<{ name: string; ports?: Array<{ containerPort: number }> }>; initContainers?: typeof spec.containers };
  const sidecar = [...(spec.initContainers ?? []), ...(spec.containers ?? [])].find((c) => c.name === SIDECAR_NAME);
  return sidecar?.ports?.[0]?.containerPort ?? NaN;
}

describe('webhook golden files', () => {
  const servers = new Map<string, RunningWebhook>();
  beforeAll(async () => {
    servers.set('native', await startWebhook());
    servers.set('classic', await startWebhook({ ...testInjectionConfig, nativeSidecars: false }));
  });
  afterAll(async () => {
    for (const s of servers.values()) await s.close();
  });

  it('has cases', () => expect(cases.length).toBeGreaterThanOrEqual(10));

  it.each(cases)('%s', async (name) => {
    const input = JSON.parse(readFileSync(join(dir, `${name}.input.json`), 'utf8')) as GoldenInput;
    const server = servers.get(input.config?.nativeSidecars === false ? 'classic' : 'native')!;
    const kind = input.kind ?? 'Pod';
    clusterJobs.clear();
    for (const job of input.jobs ?? []) clusterJobs.set(`${job.namespace}/${job.name}`, job);
    const res = await server.post(review(input.object, { namespace: input.namespace, uid: `uid-${name}`, kind, oldObject: input.oldObject }));
    expect(res.status).toBe(200);
    const body = res.json as { apiVersion: string; kind: string; response: Record<string, unknown> };
    expect(body.apiVersion).toBe('admission.k8s.io/v1');
    expect(body.kind).toBe('AdmissionReview');
    expect(body.response.uid).toBe(`uid-${name}`);

    const patch = decodePatch(body.response);
    const outcome: Outcome = { allowed: body.response.allowed as boolean };
    if (!outcome.allowed) outcome.message = (body.response.status as { message: string }).message;
    if (body.response.warnings) outcome.warnings = body.response.warnings as string[];
    const patched = jsonpatch.applyPatch(structuredClone(input.object), patch, true, false).newDocument as Record<string, unknown>;
    if (outcome.allowed) outcome.object = patched;

    // Each pod gets a random drain token: the files show DRAIN-TOKEN in its place.
    const drainToken = existingDrainToken(patched as V1Pod);
    if (drainToken !== undefined) expect(drainToken).toMatch(/^[A-Za-z0-9_-]{32}$/);
    const shown = JSON.stringify(outcome, null, 2);
    const normalised = JSON.parse(drainToken === undefined ? shown : shown.replaceAll(drainToken, 'DRAIN-TOKEN')) as Outcome;
    const expectedFile = join(dir, `${name}.expected.json`);
    if (process.env.UPDATE_GOLDEN) writeFileSync(expectedFile, `${JSON.stringify(normalised, null, 2)}\n`);
    expect(normalised).toEqual(JSON.parse(readFileSync(expectedFile, 'utf8')));

    // The user's containers are untouched, byte for byte, but for the drain hook
    // added to app containers that had no preStop hook of their own.
    type Container = { name: string; lifecycle?: { preStop?: unknown } & Record<string, unknown> };
    const spec = (o: Record<string, unknown>) => (o.spec ?? {}) as { containers?: Container[]; initContainers?: Container[] };
    const originalApps = new Map((spec(input.object).containers ?? []).map((c) => [c.name, c]));
    const withoutDrainHook = (c: Container): Container => {
      const original = originalApps.get(c.name);
      if (original?.lifecycle?.preStop !== undefined) {
        // A container with its own hook keeps it and gets the drain token in its environment, last.
        const env = (c as { env?: Array<{ name: string; value?: string }> }).env ?? [];
        expect(env.at(-1)).toEqual({ name: 'KUEUER_DRAIN_TOKEN', value: drainToken });
        const copy: Container = { ...c };
        const rest = env.slice(0, -1);
        if ((original as { env?: unknown }).env === undefined && rest.length === 0) delete (copy as { env?: unknown }).env;
        else (copy as { env?: unknown }).env = rest;
        return copy;
      }
      if (c.lifecycle?.preStop === undefined) return c;
      expect(c.lifecycle.preStop).toEqual(drainHook(adminPortOf(patched), drainToken ?? ''));
      const rest: Record<string, unknown> = { ...c.lifecycle };
      delete rest.preStop;
      const copy: Container = { ...c };
      if (Object.keys(rest).length === 0) delete copy.lifecycle;
      else copy.lifecycle = rest;
      return copy;
    };
    const users = (o: Record<string, unknown>, strip: boolean) =>
      JSON.stringify([
        ...(spec(o).initContainers ?? []).filter((c) => c.name !== SIDECAR_NAME),
        ...(spec(o).containers ?? []).filter((c) => c.name !== SIDECAR_NAME).map((c) => (strip ? withoutDrainHook(c) : c)),
      ]);
    expect(users(patched, outcome.allowed)).toBe(users(input.object, false));
    // A pod the webhook changed has app containers, and every one ends with a preStop hook: ours, or its own.
    if (kind === 'Pod' && outcome.allowed && JSON.stringify(patched) !== JSON.stringify(input.object)) {
      const apps = (spec(patched).containers ?? []).filter((c) => c.name !== SIDECAR_NAME);
      expect(apps.map((c) => c.name)).not.toEqual([]);
      expect(apps.filter((c) => c.lifecycle?.preStop === undefined).map((c) => c.name)).toEqual([]);
    }

    // Idempotent: admitting the result again (a reinvocation: same oldObject) changes nothing, the drain token included.
    const again = await server.post(review(patched, { namespace: input.namespace, uid: `uid-${name}-again`, kind, oldObject: input.oldObject }));
    const againResponse = (again.json as { response: Record<string, unknown> }).response;
    expect(againResponse.allowed).toBe(outcome.allowed);
    expect(decodePatch(againResponse)).toEqual([]);
  });
});
