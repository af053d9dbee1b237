import { describe, expect, it } from 'vitest';
import { backoff, retry } from '../../shared/retry.js';

describe('backoff', () => {
  it('doubles from the base up to the cap', () => {
    const p = { baseMs: 50, capMs: 1000 };
    expect([1, 2, 3, 4, 5, 6, 7].map((a) => backoff(p, a))).toEqual([50, 100, 200, 400, 800, 1000, 1000]);
  });
  it('jitters within [ceiling/2, ceiling)', () => {
    const p = { baseMs: 200, capMs: 5000, jitter: true };
    expect(backoff(p, 3, () => 0)).toBe(400);
    expect(backoff(p, 3, () => 0.999)).toBe(799);
  });
});

describe('retry', () => {
  it('returns the first success, calling onRetry before each wait', async () => {
    const seen: number[] = [];
    const result = await retry(
      async (attempt) => {
        if (attempt < 3) throw new Error(`fail ${attempt}`);
        return 'ok';
      },
      { baseMs: 1, capMs: 2, onRetry: (_e, a) => seen.push(a) },
    );
    expect(result).toBe('ok');
    expect(seen).toEqual([1, 2]);
  });
  it('rethrows at once what is not retryable', async () => {
    let calls = 0;
    await expect(
      retry(
        async () => {
          calls++;
          throw new Error('fatal');
        },
        { baseMs: 1, capMs: 1, retryable: () => false },
      ),
    ).rejects.toThrow('fatal');
    expect(calls).toBe(1);
  });
  it('stops after maxAttempts and before a deadline', async () => {
    let calls = 0;
    await expect(
      retry(
        async () => {
          calls++;
          throw new Error('x');
        },
        { baseMs: 1, capMs: 1, maxAttempts: 4 },
      ),
    ).rejects.toThrow('x');
    expect(calls).toBe(4);
    const started = Date.now();
    await expect(
      retry(
        async () => {
          throw new Error('y');
        },
        { baseMs: 20, capMs: 20, until: Date.now() + 100 },
      ),
    ).rejects.toThrow('y');
    expect(Date.now() - started).toBeLessThan(150);
  });
  it('stops when aborted, even mid-wait', async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 30);
    const started = Date.now();
    await expect(
      retry(
        async () => {
          throw new Error('z');
        },
        { baseMs: 1000, capMs: 1000, signal: ac.signal },
      ),
    ).rejects.toThrow('z');
    expect(Date.now() - started).toBeLessThan(500);
  });
});
