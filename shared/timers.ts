/** Node's timers hold at most 2^31-1 ms (about 24.8 days); a longer delay would fire at once. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** A delay every timer can hold: never negative, never past MAX_TIMER_MS. */
export function safeTimerMs(ms: number): number {
  if (!Number.isFinite(ms)) return ms > 0 ? MAX_TIMER_MS : 0;
  return Math.min(Math.max(0, ms), MAX_TIMER_MS);
}

/**
 * `work`'s outcome, or the error `timeoutError()` makes if `work` has not
 * settled within `ms`; the timer is cleared either way, so it never holds the
 * process open. `work` itself is not cancelled (a caller that can cancel
 * passes an AbortSignal to it as well).
 */
export function settleWithin<T>(work: Promise<T>, ms: number, timeoutError: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(timeoutError()), safeTimerMs(ms));
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}
