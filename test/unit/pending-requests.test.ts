import { describe, expect, it, vi } from 'vitest';
import { PendingRequests } from '../../responder/pending-requests.js';
import { settleable } from '../helpers/settleable.js';

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
    holdQuietly(pending, 'a');
    expect(pending.isFull()).toBe(false);
    holdQuietly(pending, 'b');
    expect(pending.isFull()).toBe(true);
    pending.take('a');
    pending.take('b');
  });

  it('hands out, at once and only once, the entries routed to a lost inbox, leaving the others held', () => {
    vi.useFakeTimers();
    const pending = new PendingRequests(10);
    const onTimeout = vi.fn();
    const lost = vi.fn();
    pending.hold('a', 100, () => undefined, onTimeout, undefined, { replyTo: 'inbox.1', onInboxLost: lost });
    pending.hold('b', 100, () => undefined, onTimeout, undefined, { replyTo: 'inbox.2', onInboxLost: lost });
    pending.hold('c', 100, () => undefined, onTimeout);
    const taken = pending.takeRoutedTo('inbox.1');
    expect(taken.map((t) => t.id)).toEqual(['a']);
    taken[0]!.entry.onInboxLost('gone');
    expect(lost).toHaveBeenCalledWith('gone');
    expect(pending.takeRoutedTo('inbox.1')).toEqual([]);
    expect(pending.size).toBe(2);
    vi.advanceTimersByTime(100);
    expect(onTimeout).toHaveBeenCalledTimes(2); // b and c; a's timer was cancelled
    vi.useRealTimers();
  });

  it('keeps a place taken until a publish settles, whether it succeeds or fails', async () => {
    const pending = new PendingRequests(2);
    const ok = settleable();
    const failed = settleable();
    pending.keepPlaceUntil(ok.promise);
    pending.keepPlaceUntil(failed.promise);
    expect(pending.size).toBe(0); // no client is held
    expect(pending.isFull()).toBe(true);
    ok.resolve();
    await ok.promise;
    expect(pending.isFull()).toBe(false);
    failed.reject(new Error('not confirmed'));
    await failed.promise.catch(() => undefined);
    holdQuietly(pending, 'a');
    expect(pending.isFull()).toBe(false);
    pending.take('a');
  });
});

/** Holds `id` for a second with callbacks that do nothing. */
function holdQuietly(pending: PendingRequests, id: string): void {
  pending.hold(
    id,
    1000,
    () => undefined,
    () => undefined,
  );
}
