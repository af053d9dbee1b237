/**
 * The one retry primitive (in the spirit of KEDA http-add-on's DefaultBackoff):
 * exponential backoff, optionally jittered, and a loop that retries an
 * operation until it succeeds, is refused as not retryable, runs past its
 * deadline, or is aborted.
 */
import { setTimeout as sleep } from 'node:timers/promises';

export interface BackoffOptions {
  /** Wait before the second try; doubles each time. */
  baseMs: number;
  /** Longest wait. */
  capMs: number;
  /** Equal jitter: each wait is drawn from [ceiling/2, ceiling), so many retriers spread out. */
  jitter?: boolean;
}

/** The wait after the given (1-based) failed attempt. */
export function backoff(options: BackoffOptions, attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(options.capMs, options.baseMs * 2 ** Math.min(Math.max(attempt, 1) - 1, 30));
  return options.jitter ? Math.floor(ceiling / 2 + random() * (ceiling / 2)) : ceiling;
}

/** The backoff used where nothing else is asked for: 50 ms doubling to 1 s, jittered. */
export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 50, capMs: 1000, jitter: true };

export interface RetryOptions extends Partial<BackoffOptions> {
  /** Give up (rethrow) when the next wait would end after this epoch-ms time (which may depend on the error). */
  until?: number | ((err: unknown) => number);
  /** Give up after this many attempts. */
  maxAttempts?: number;
  signal?: AbortSignal;
  /** False: rethrow at once. Default: every error is retryable. */
  retryable?: (err: unknown) => boolean;
  /** Called before each wait, e.g. to log or count the retry. */
  onRetry?: (err: unknown, attempt: number, waitMs: number) => void;
}

/** Runs `operation` until it resolves; rethrows its last error when retrying stops. */
export async function retry<T>(operation: (attempt: number) => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const policy: BackoffOptions = { ...DEFAULT_BACKOFF, ...options };
  for (let attempt = 1; ; attempt++) {
    try {
      return await operation(attempt);
    } catch (err) {
      const wait = backoff(policy, attempt);
      const stop =
        options.signal?.aborted === true ||
        (options.retryable !== undefined && !options.retryable(err)) ||
        (options.maxAttempts !== undefined && attempt >= options.maxAttempts) ||
        (options.until !== undefined && Date.now() + wait >= (typeof options.until === 'function' ? options.until(err) : options.until));
      if (stop) throw err;
      options.onRetry?.(err, attempt, wait);
      await sleep(wait, undefined, options.signal ? { signal: options.signal } : undefined).catch(() => undefined);
      if (options.signal?.aborted) throw err;
    }
  }
}
