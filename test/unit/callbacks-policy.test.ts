/** What a callback delivery sends, and when it is retried. */
import { describe, expect, it } from 'vitest';
import { callbackHeaders, nextWaitMs, outcomeOfStatus, parseRetryAfterMs } from '../../responder/callbacks/policy.js';
import { verifyCallback } from '../../responder/callbacks/signature.js';

describe('outcomeOfStatus', () => {
  it.each([
    [200, 'delivered'],
    [204, 'delivered'],
    [500, 'retry'],
    [503, 'retry'],
    [429, 'retry'],
    [408, 'retry'],
    [400, 'rejected'],
    [404, 'rejected'],
    [410, 'rejected'],
    [301, 'redirect'],
    [307, 'redirect'],
    [100, 'rejected'],
  ])('%i -> %s', (status, outcome) => expect(outcomeOfStatus(status)).toBe(outcome));
});

describe('parseRetryAfterMs', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');
  it('reads seconds and HTTP dates, and ignores anything else', () => {
    expect(parseRetryAfterMs('7', now)).toBe(7000);
    expect(parseRetryAfterMs('Thu, 01 Jan 2026 00:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfterMs('Wed, 31 Dec 2025 00:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfterMs('-3', now)).toBeUndefined();
    expect(parseRetryAfterMs('soon', now)).toBeUndefined();
    expect(parseRetryAfterMs(undefined, now)).toBeUndefined();
    expect(parseRetryAfterMs('99999999999999999999', now)).toBe(Number.MAX_SAFE_INTEGER);
  });
});

describe('nextWaitMs', () => {
  const backoff = { baseMs: 1000, capMs: 60_000, jitter: false };
  it('backs off exponentially, waits at least Retry-After, and caps Retry-After', () => {
    expect([1, 2, 3, 4].map((a) => nextWaitMs(a, undefined, { backoff, maxRetryAfterMs: 120_000 }))).toEqual([1000, 2000, 4000, 8000]);
    expect(nextWaitMs(1, 30_000, { backoff, maxRetryAfterMs: 120_000 })).toBe(30_000);
    expect(nextWaitMs(1, 10 ** 12, { backoff, maxRetryAfterMs: 120_000 })).toBe(120_000);
    expect(nextWaitMs(5, 10, { backoff, maxRetryAfterMs: 120_000 })).toBe(16_000);
  });
  it('jitters within [ceiling/2, ceiling)', () => {
    const w = nextWaitMs(3, undefined, { backoff: { ...backoff, jitter: true }, maxRetryAfterMs: 0 }, () => 0.5);
    expect(w).toBe(3000);
  });
});

describe('callbackHeaders', () => {
  const key = Buffer.alloc(32, 7);
  const response = {
    status: 201,
    headers: [
      ['Content-Type', 'application/json'],
      ['ETag', '"x"'],
      ['Set-Cookie', 'session=secret'],
      ['Content-Length', '999'],
      ['Connection', 'close, X-Hop'],
      ['X-Hop', '1'],
      ['Transfer-Encoding', 'chunked'],
      ['Webhook-Signature', 'v1,forged'],
      ['x_kueuer_status', '200'],
      ['Authorization', 'Bearer t'],
    ] as Array<[string, string]>,
    body: Buffer.from('{"a":1}'),
  };

  it('forwards safe app headers, adds status, id, attempt and a signature a receiver verifies', () => {
    const h = callbackHeaders({ requestId: 'f'.repeat(32), response, key, timestampSec: 1000, attempt: 2, userAgent: 'kueuer/1' });
    const names = h.map(([n]) => n.toLowerCase());
    expect(h).toContainEqual(['Content-Type', 'application/json']);
    expect(h).toContainEqual(['ETag', '"x"']);
    for (const gone of ['set-cookie', 'content-length', 'connection', 'x-hop', 'transfer-encoding', 'authorization', 'x_kueuer_status'])
      expect(names).not.toContain(gone);
    expect(names.filter((n) => n === 'webhook-signature')).toHaveLength(1);
    expect(h).toContainEqual(['x-kueuer-status', '201']);
    expect(h).toContainEqual(['x-kueuer-request-id', 'f'.repeat(32)]);
    expect(h).toContainEqual(['x-kueuer-attempt', '2']);
    expect(h).toContainEqual(['user-agent', 'kueuer/1']);
    const headers = Object.fromEntries(h.map(([n, v]) => [n.toLowerCase(), v]));
    expect(verifyCallback({ key, headers, body: response.body, nowSec: 1000 })).toEqual({ ok: true });
  });
});
