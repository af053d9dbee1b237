/**
 * shared/timers.ts: settleWithin, the one promise deadline every caller uses
 * (kubectl-like CLI calls, the webhook's preflight and Job lookups, Kafka
 * publishes), and the timer range it clamps to.
 */
import { describe, expect, it, vi } from 'vitest';
import { MAX_TIMER_MS, settleWithin } from '../../shared/timers.js';

describe('settleWithin', () => {
  it("passes the work's value through and leaves no timer behind", async () => {
    vi.useFakeTimers();
    try {
      await expect(settleWithin(Promise.resolve(42), 1000, () => new Error('late'))).resolves.toBe(42);
      expect(vi.getTimerCount()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });

  it("passes the work's own failure through, not the timeout's", async () => {
    await expect(settleWithin(Promise.reject(new Error('refused')), 1000, () => new Error('late'))).rejects.toThrow('refused');
  });

  it('rejects with the given error once the time is up, while the work is still pending', async () => {
    vi.useFakeTimers();
    try {
      const pending = settleWithin(new Promise<never>(() => undefined), 5000, () => new Error('no answer within 5 s'));
      const seen = pending.catch((e: Error) => e.message);
      await vi.advanceTimersByTimeAsync(4999);
      expect(vi.getTimerCount()).toBe(1);
      await vi.advanceTimersByTimeAsync(1);
      expect(await seen).toBe('no answer within 5 s');
      expect(vi.getTimerCount()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });

  it('holds a deadline past 24.8 days instead of firing at once (Node would treat it as 1 ms)', async () => {
    vi.useFakeTimers();
    try {
      let late = false;
      void settleWithin(new Promise<never>(() => undefined), 30 * 86_400_000, () => new Error('late')).catch(() => (late = true));
      await vi.advanceTimersByTimeAsync(1000);
      expect(late).toBe(false);
      await vi.advanceTimersByTimeAsync(MAX_TIMER_MS);
      expect(late).toBe(true);
    } finally {
      vi.useRealTimers();
    }
  });
});
