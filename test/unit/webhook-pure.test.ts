import { describe, expect, it } from 'vitest';
import { deprecationWarning, optIn, parsePodSettings, parseServiceSettings, wantsInjection } from '../../shared/annotations.js';
import { supportsNativeSidecars } from '../../webhook/cluster-version.js';
import { overlay } from '../../webhook/admission/pod-injection.js';
import { qualifiedQueueName } from '../../shared/queue-names.js';
import { owningWorkloadName } from '../../webhook/admission/workload-queue.js';

describe('owning workload', () => {
  it('strips the pod-template-hash from a Deployment ReplicaSet name', () => {
    expect(
      owningWorkloadName({
        generateName: 'web-7d9f8b6c5d-',
        labels: { 'pod-template-hash': '7d9f8b6c5d' },
        ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web-7d9f8b6c5d', uid: 'u', controller: true }],
      }),
    ).toBe('web');
  });

  it('keeps a ReplicaSet name without the hash label as it is', () => {
    expect(owningWorkloadName({ ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'bare-rs', uid: 'u' }] })).toBe('bare-rs');
  });

  it('uses a StatefulSet or Job name, then the pod name, then generateName', () => {
    expect(
      owningWorkloadName({ name: 'db-0', ownerReferences: [{ apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'db', uid: 'u', controller: true }] }),
    ).toBe('db');
    expect(owningWorkloadName({ name: 'solo' })).toBe('solo');
    expect(owningWorkloadName({ generateName: 'batch-' })).toBe('batch');
  });

  it('qualifies queues with the namespace and keeps them within 200 characters', () => {
    expect(qualifiedQueueName('shop', 'web')).toBe('shop.web');
    const long = qualifiedQueueName('n'.repeat(63), 'w'.repeat(253));
    expect(long.length).toBe(200);
    expect(long).toMatch(/-[0-9a-f]{16}$/);
    expect(qualifiedQueueName('n'.repeat(63), 'w'.repeat(253))).toBe(long);
    expect(qualifiedQueueName('n'.repeat(63), `${'w'.repeat(252)}x`)).not.toBe(long);
  });
});

describe('annotations', () => {
  it('opts in only on "true"', () => {
    expect(wantsInjection(undefined)).toEqual({ ok: true, value: false });
    expect(wantsInjection({ 'kueuer.io/inject': 'false' })).toEqual({ ok: true, value: false });
    expect(wantsInjection({ 'kueuer.io/inject': 'true' })).toEqual({ ok: true, value: true });
    expect(wantsInjection({ 'kueuer.io/inject': 'True' }).ok).toBe(false);
  });

  it('opts in with the label kueuer.io/inject; the annotation alone still does, with a deprecation naming the label', () => {
    const on = { 'kueuer.io/inject': 'true' };
    const off = { 'kueuer.io/inject': 'false' };
    expect(optIn(on, undefined)).toEqual({ ok: true, value: { value: true } });
    expect(optIn(off, undefined)).toEqual({ ok: true, value: { value: false } });
    expect(optIn(undefined, undefined)).toEqual({ ok: true, value: { value: false } });
    expect(optIn(undefined, on)).toEqual({ ok: true, value: { value: true, deprecation: deprecationWarning() } });
    expect(deprecationWarning()).toContain('add the label kueuer.io/inject: "true"');
    expect(optIn(undefined, off)).toEqual({ ok: true, value: { value: false } });
    // Both: the label decides, with no warning; a disagreement is refused.
    expect(optIn(on, on)).toEqual({ ok: true, value: { value: true } });
    expect(optIn(off, on)).toEqual({ ok: false, problems: [expect.stringContaining('the label says "false" and the deprecated annotation says "true"')] });
    expect(optIn({ 'kueuer.io/inject': 'True' }, undefined)).toEqual({
      ok: false,
      problems: ['label kueuer.io/inject: "True" is not accepted; use "true" or "false"'],
    });
    expect(wantsInjection(undefined, on)).toEqual({ ok: true, value: true });
  });

  it('parses every pod setting', () => {
    const parsed = parsePodSettings({
      'kueuer.io/app-port': '8080',
      'kueuer.io/queue': 'orders',
      'kueuer.io/backend': 'rabbit',
      'kueuer.io/concurrency': '4',
      'kueuer.io/native-sidecar': 'false',
      'kueuer.io/sidecar-cpu-request': '0.25',
      'kueuer.io/sidecar-memory-limit': '1Gi',
    });
    expect(parsed).toEqual({
      ok: true,
      value: {
        appPort: 8080,
        queue: 'orders',
        backendSecret: 'rabbit',
        concurrency: 4,
        nativeSidecar: false,
        resources: { cpuRequest: '0.25', memoryLimit: '1Gi' },
      },
    });
  });

  it('parses Service settings', () => {
    expect(parseServiceSettings({ 'kueuer.io/timeout': '5m', 'kueuer.io/queue': 'q' })).toEqual({ ok: true, value: { timeoutMs: 300_000, queue: 'q' } });
    expect(parseServiceSettings({ 'kueuer.io/timeout': 'forever' }).ok).toBe(false);
  });
});

describe('native sidecar support', () => {
  it.each([
    ['1', '28', false],
    ['1', '29', true],
    ['1', '29+', true],
    ['1', '33', true],
    ['2', '0', true],
  ])('%s.%s → %s', (major, minor, expected) => expect(supportsNativeSidecars(major, minor)).toBe(expected));
});

describe('overlay', () => {
  it('keeps defaulted fields and lets ours win', () => {
    expect(overlay({ a: 1, b: { c: 2, d: 3 }, e: [{ x: 1, y: 2 }] }, { a: 9, b: { c: 8 }, e: [{ x: 7 }] })).toEqual({
      a: 9,
      b: { c: 8, d: 3 },
      e: [{ x: 7, y: 2 }],
    });
    expect(overlay({ e: [1, 2] }, { e: [3] })).toEqual({ e: [3] });
  });
});
