import { describe, expect, it, vi } from 'vitest';
import { PendingRequests } from '../../responder/pending-requests.js';

describe('PendingRequests', () => {
  it('times out an entry once and frees it', () => {
    vi.useFakeTimers();
    const pending = new PendingRequests(10);
    const onTimeout = vi.fn();
    pending.hold('a', 100, () => undefined, onTimeout);
    expect(pending.size).toBe(1);
    vi.advanceTimersByTime(100);
    expect(onTimeout).toHaveBeenCalledTimes(1);
    expect(pending.size).toBe(0);
    expect(pending.take('a')).toBeUndefined(); // a late reply finds nothing
    vi.useRealTimers();
  });

  it('hands an entry out exactly once and cancels its timer', () => {
    vi.useFakeTimers();
    const pending = new PendingRequests(10);
    const onTimeout = vi.fn();
    pending.hold('a', 100, () => undefined, onTimeout);
    expect(pending.take('a')).toBeDefined();
    expect(pending.take('a')).toBeUndefined();
    vi.advanceTimersByTime(1000);
    expect(onTimeout).not.toHaveBeenCalled();
    vi.useRealTimers();
  });

  it('reports full at its limit', () => {
    const pending = new PendingRequests(2);
    pending.hold(
      'a',
      1000,
      () => undefined,
      () => undefined,
    );
    expect(pending.isFull()).toBe(false);
    pending.hold(
      'b',
      1000,
      () => undefined,
      () => undefined,
    );
    expect(pending.isFull()).toBe(true);
    pending.take('a');
    pending.take('b');
  });
});
