/** Standard Webhooks signatures: what Kueuer signs, and the receiver's verification from docs/async-callbacks.md. */
import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { parseSigningKey, signCallback, verifyCallback } from '../../responder/callbacks/signature.js';

const key = Buffer.from('0123456789abcdef0123456789abcdef');
const id = 'a'.repeat(32);
const body = Buffer.from([0x7b, 0x00, 0xff, 0x7d]);

describe('signCallback', () => {
  it('is v1,base64(HMAC-SHA256(key, "id.timestamp.body")) over the raw body bytes', () => {
    const expected = createHmac('sha256', key)
      .update(Buffer.concat([Buffer.from(`${id}.1700000000.`), body]))
      .digest('base64');
    expect(signCallback(key, id, 1700000000, body)).toBe(`v1,${expected}`);
  });
});

describe('verifyCallback', () => {
  const headers = (ts: number, sig = signCallback(key, id, ts, body)) => ({ 'webhook-id': id, 'webhook-timestamp': String(ts), 'webhook-signature': sig });

  it('accepts a fresh, well-signed delivery (with the key raw or as whsec_)', () => {
    expect(verifyCallback({ key, headers: headers(1000), body, nowSec: 1010 })).toEqual({ ok: true });
    expect(verifyCallback({ key: `whsec_${key.toString('base64')}`, headers: headers(1000), body, nowSec: 1010 })).toEqual({ ok: true });
  });

  it('accepts when one of several space-separated signatures matches (key rotation)', () => {
    const h = headers(1000, `v1,${Buffer.alloc(32).toString('base64')} ${signCallback(key, id, 1000, body)}`);
    expect(verifyCallback({ key, headers: h, body, nowSec: 1000 })).toEqual({ ok: true });
  });

  it.each([
    ['a changed body', { body: Buffer.from('{}') }, /signature/],
    ['another key', { key: Buffer.from('x'.repeat(32)) }, /signature/],
    ['an old timestamp', { nowSec: 1000 + 301 }, /timestamp/],
    ['a future timestamp', { nowSec: 1000 - 301 }, /timestamp/],
  ])('refuses %s', (_what, change, reason) => {
    const r = verifyCallback({ key, headers: headers(1000), body, nowSec: 1000, ...change });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toMatch(reason);
  });

  it('refuses missing or malformed headers', () => {
    expect(verifyCallback({ key, headers: {}, body, nowSec: 0 }).ok).toBe(false);
    expect(verifyCallback({ key, headers: { ...headers(1000), 'webhook-timestamp': 'soon' }, body, nowSec: 1000 }).ok).toBe(false);
    expect(verifyCallback({ key, headers: headers(1000, 'v1,'), body, nowSec: 1000 }).ok).toBe(false);
    expect(verifyCallback({ key, headers: headers(1000, 'v2,abc'), body, nowSec: 1000 }).ok).toBe(false);
  });
});

describe('parseSigningKey', () => {
  it('takes whsec_<base64> decoded, other values as raw bytes, and refuses short keys', () => {
    expect(parseSigningKey(Buffer.from(`whsec_${key.toString('base64')}`))).toEqual({ ok: true, key });
    expect(parseSigningKey(key)).toEqual({ ok: true, key });
    expect(parseSigningKey(Buffer.from('short'))).toMatchObject({ ok: false, problem: expect.stringMatching(/at least 24 bytes/) });
    expect(parseSigningKey(Buffer.from('whsec_!!!'))).toMatchObject({ ok: false });
  });
});
