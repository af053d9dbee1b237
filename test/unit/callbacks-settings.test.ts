/** A Service's callback annotations, and the signing key read from the Secret they name. */
import type { CoreV1Api } from '@kubernetes/client-node';
import { describe, expect, expectTypeOf, it, vi } from 'vitest';
import { kubeReadSecret, type SecretReader } from '../../responder/callbacks/kube-secret.js';
import { CallbackKeys, loadCallbackKey, parseCallbackSettings, parseSecretRef } from '../../responder/callbacks/settings.js';

const b64 = (s: string) => Buffer.from(s).toString('base64');
const KEY = 'k'.repeat(32);

describe('parseSecretRef', () => {
  it('reads name or name/key (default key "key")', () => {
    expect(parseSecretRef('hooks')).toEqual({ ok: true, value: { name: 'hooks', key: 'key' } });
    expect(parseSecretRef('hooks/signing.key')).toEqual({ ok: true, value: { name: 'hooks', key: 'signing.key' } });
  });

  it.each(['', 'Hooks', 'ns/hooks/key', 'hooks/', 'hooks/k y', 'https://x'])('refuses %j naming the annotation', (raw) => {
    const r = parseSecretRef(raw);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.problem).toMatch(/^kueuer\.io\/async-callback-secret: /);
  });
});

describe('parseCallbackSettings', () => {
  it('is off without the annotations', () => {
    expect(parseCallbackSettings(undefined)).toEqual({ ok: true, value: undefined });
    expect(parseCallbackSettings({ 'kueuer.io/queue': 'q' })).toEqual({ ok: true, value: undefined });
  });

  it('reads both annotations', () => {
    const r = parseCallbackSettings({ 'kueuer.io/async-callback-allow': 'https://a.example.com', 'kueuer.io/async-callback-secret': 's/k' });
    expect(r).toMatchObject({ ok: true, value: { allow: { entries: [{ host: 'a.example.com' }] }, secret: { name: 's', key: 'k' } } });
  });

  it('refuses one without the other, and collects every problem', () => {
    expect(parseCallbackSettings({ 'kueuer.io/async-callback-allow': 'https://a.example.com' })).toMatchObject({
      ok: false,
      problems: [expect.stringMatching(/needs kueuer\.io\/async-callback-secret/)],
    });
    expect(parseCallbackSettings({ 'kueuer.io/async-callback-secret': 's' })).toMatchObject({
      ok: false,
      problems: [expect.stringMatching(/no effect without kueuer\.io\/async-callback-allow/)],
    });
    const both = parseCallbackSettings({ 'kueuer.io/async-callback-allow': 'ftp://x', 'kueuer.io/async-callback-secret': 'A' });
    expect(both.ok === false && both.problems.length).toBe(2);
  });
});

describe('loadCallbackKey', () => {
  const ref = { name: 'hooks', key: 'key' };

  it('reads and decodes the key from the Secret the annotation names, in the Service namespace', async () => {
    const readSecret = vi.fn(async () => ({ key: b64(KEY) }));
    expect(await loadCallbackKey(readSecret, 'shop', ref)).toEqual({ ok: true, key: Buffer.from(KEY) });
    expect(readSecret).toHaveBeenCalledWith('shop', 'hooks');
  });

  it.each([
    ['a missing Secret', async () => undefined, /Secret shop\/hooks does not exist/],
    ['a missing key', async () => ({ other: b64(KEY) }), /has no key "key" \(it has: other\)/],
    ['a short key', async () => ({ key: b64('short') }), /at least 24 bytes/],
    ['a refused read', async () => Promise.reject(new Error('forbidden: cannot get secrets')), /forbidden.*RBAC: get on secrets/],
  ])('says what is wrong with %s', async (_what, readSecret, message) => {
    const r = await loadCallbackKey(readSecret, 'shop', ref);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.problem).toMatch(message);
  });
});

describe('CallbackKeys', () => {
  it('reads a Secret once per TTL, and again after it', async () => {
    let now = 0;
    const readSecret = vi.fn(async () => ({ key: b64(KEY) }));
    const keys = new CallbackKeys(readSecret, { ttlMs: 1000, now: () => now });
    await keys.get('ns', { name: 'hooks', key: 'key' });
    await keys.get('ns', { name: 'hooks', key: 'key' });
    expect(readSecret).toHaveBeenCalledTimes(1);
    now = 1001;
    await keys.get('ns', { name: 'hooks', key: 'key' });
    expect(readSecret).toHaveBeenCalledTimes(2);
  });

  it('keeps a failure only for failureTtlMs: a flood of submits to a Service with a missing Secret is not a flood of API reads', async () => {
    let now = 0;
    const readSecret = vi.fn(async () => undefined);
    const keys = new CallbackKeys(readSecret, { failureTtlMs: 1000, now: () => now });
    expect((await keys.get('ns', { name: 'hooks', key: 'key' })).ok).toBe(false);
    expect(await keys.get('ns', { name: 'hooks', key: 'key' })).toMatchObject({ ok: false, problem: /does not exist/ });
    expect(readSecret).toHaveBeenCalledTimes(1);
    now = 1001;
    expect((await keys.get('ns', { name: 'hooks', key: 'key' })).ok).toBe(false);
    expect(readSecret).toHaveBeenCalledTimes(2);
  });

  it('gives up on a read that never answers after loadTimeoutMs, and reads again once the failure expires', async () => {
    let now = 0;
    let hang = true;
    const readSecret = vi.fn(() => (hang ? new Promise<Record<string, string>>(() => undefined) : Promise.resolve({ key: b64(KEY) })));
    const keys = new CallbackKeys(readSecret, { loadTimeoutMs: 50, failureTtlMs: 1000, now: () => now });
    expect(await keys.get('ns', { name: 'hooks', key: 'key' })).toMatchObject({ ok: false, problem: /Secret ns\/hooks could not be read within 50 ms/ });
    hang = false;
    now = 1001;
    expect((await keys.get('ns', { name: 'hooks', key: 'key' })).ok).toBe(true);
    expect(readSecret).toHaveBeenCalledTimes(2);
  });

  it('reads a Secret once for concurrent callers (no burst of reads when the key expires under load)', async () => {
    const answers: Array<(data: Record<string, string>) => void> = [];
    const readSecret = vi.fn(() => new Promise<Record<string, string>>((resolve) => answers.push(resolve)));
    const keys = new CallbackKeys(readSecret);
    const pending = Array.from({ length: 50 }, () => keys.get('ns', { name: 'hooks', key: 'key' }));
    await new Promise((resolve) => setImmediate(resolve));
    for (const answer of answers) answer({ key: b64(KEY) });
    const all = await Promise.all(pending);
    expect(all.every((k) => k.ok)).toBe(true);
    expect(readSecret).toHaveBeenCalledTimes(1);
  });
});

describe('kubeReadSecret', () => {
  it('reads .data through the cluster client, undefined on 404, and rethrows anything else', async () => {
    const calls: unknown[] = [];
    const core = {
      readNamespacedSecret: async (ref: { namespace: string; name: string }) => {
        calls.push(ref);
        if (ref.name === 'gone') throw Object.assign(new Error('not found'), { code: 404 });
        if (ref.name === 'locked') throw Object.assign(new Error('secrets "locked" is forbidden'), { code: 403 });
        return { data: { key: 'eA==' } };
      },
    };
    const read = kubeReadSecret(core);
    expect(await read('shop', 'hooks')).toEqual({ key: 'eA==' });
    expect(calls).toEqual([{ namespace: 'shop', name: 'hooks' }]);
    expect(await read('shop', 'gone')).toBeUndefined();
    await expect(read('shop', 'locked')).rejects.toThrow(/forbidden/);
  });

  it("takes the responder's CoreV1Api as it is", () => {
    expectTypeOf<CoreV1Api>().toExtend<SecretReader>();
  });
});
