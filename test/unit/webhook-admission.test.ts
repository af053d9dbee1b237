/**
 * mutate() as the apiserver calls it: what each admission logs, what a
 * dry-run leaves behind, and which queue names are refused (issue 22: 9, 14, 21).
 */
import { Writable } from 'node:stream';
import type { V1Pod } from '@kubernetes/client-node';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { AdmissionRequest } from '../../webhook/admission-review.js';
import { mutate } from '../../webhook/mutate.js';
import { JobWorkloads } from '../../webhook/workload-queue.js';
import { silentLog } from '../helpers/stack.js';
import { testInjectionConfig } from '../helpers/webhook.js';

const noJobs = new JobWorkloads(async () => {
  throw new Error('no Job reads in this test');
});

/** A pino logger whose lines are kept, parsed. */
function capturingLog(): { log: pino.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  return { log: pino({ level: 'info' }, stream), lines };
}

function podRequest(pod: V1Pod, extra: Partial<AdmissionRequest> = {}): AdmissionRequest {
  return {
    uid: 'u-1',
    kind: { group: '', version: 'v1', kind: 'Pod' },
    namespace: pod.metadata?.namespace ?? 'shop',
    operation: 'CREATE',
    object: pod,
    ...extra,
  };
}

function appPod(namespace: string, labels: Record<string, unknown>, annotations: Record<string, string> = {}, preStop = false): V1Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'api', namespace, labels: labels as Record<string, string>, annotations },
    spec: {
      containers: [
        {
          name: 'app',
          image: 'example.com/api:1',
          ports: [{ containerPort: 8080 }],
          ...(preStop ? { lifecycle: { preStop: { exec: { command: ['sleep', '5'] } } } } : {}),
        },
      ],
    },
  };
}

describe('admission warnings in the log (issue 22, item 21)', () => {
  it('logs the drain-hook warning as what it is, not as a deprecated opt-in', async () => {
    const { log, lines } = capturingLog();
    const { response } = await mutate(
      podRequest(appPod('shop', { 'kueuer.io/inject': 'true' }, {}, true)),
      testInjectionConfig,
      { usedPorts: () => new Set() },
      noJobs,
      log,
    );
    expect(response.allowed).toBe(true);
    expect(response.warnings).toHaveLength(1);
    const warned = lines.filter((l) => l.level === 40);
    expect(warned).toHaveLength(1);
    expect(warned[0]!.msg).toBe(response.warnings![0]);
    expect(warned[0]!.warning).toBe('admission');
    expect(lines.some((l) => String(l.msg).includes('deprecated'))).toBe(false);
  });

  it('logs each warning on its own line; the deprecated opt-in still says so', async () => {
    const { log, lines } = capturingLog();
    const pod = appPod('shop', {}, { 'kueuer.io/inject': 'true' }, true);
    const { response } = await mutate(podRequest(pod), testInjectionConfig, { usedPorts: () => new Set() }, noJobs, log);
    expect(response.warnings).toHaveLength(2);
    const warned = lines.filter((l) => l.level === 40);
    expect(warned.map((l) => l.warning)).toEqual(['deprecated-opt-in', 'admission']);
    expect(warned.map((l) => l.msg)).toEqual(response.warnings);
  });
});

describe('a label value that YAML read as a boolean (issue 22, item 21)', () => {
  it('tells the user to quote kueuer.io/inject: true', async () => {
    const { response } = await mutate(
      podRequest(appPod('shop', { 'kueuer.io/inject': true })),
      testInjectionConfig,
      { usedPorts: () => new Set() },
      noJobs,
      silentLog,
    );
    expect(response.allowed).toBe(false);
    expect(response.status?.message).toContain('label kueuer.io/inject: the YAML boolean true is not a string; quote it: kueuer.io/inject: "true"');
  });

  it('says the same of an annotation given as a YAML number', async () => {
    const pod = appPod('shop', { 'kueuer.io/inject': 'true' }, { 'kueuer.io/concurrency': 4 as unknown as string });
    const { response } = await mutate(podRequest(pod), testInjectionConfig, { usedPorts: () => new Set() }, noJobs, silentLog);
    expect(response.allowed).toBe(false);
    expect(response.status?.code).toBe(400);
    expect(response.status?.message).toContain('kueuer.io/concurrency: the YAML number 4 is not a string; quote it: kueuer.io/concurrency: "4"');
  });
});
