/** Node's timers hold at most 2^31-1 ms (about 24.8 days); a longer delay would fire at once. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** A delay every timer can hold: never negative, never past MAX_TIMER_MS. */
export function safeTimerMs(ms: number): number {
  if (!Number.isFinite(ms)) return ms > 0 ? MAX_TIMER_MS : 0;
  return Math.min(Math.max(0, ms), MAX_TIMER_MS);
}
