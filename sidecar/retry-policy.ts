import { backoff, DEFAULT_BACKOFF } from '../shared/retry.js';

/** The sidecar's waits: shared/retry.ts's default backoff (50 ms doubling to 1 s, jittered), counted from attempt 0. */
export function backoffMs(attempt: number, random: () => number = Math.random): number {
  return backoff(DEFAULT_BACKOFF, attempt + 1, random);
}

/**
 * Error codes meaning the app did not take the request (not listening yet,
 * restarting, or a kept-alive socket it had closed): safe and useful to retry.
 */
const RETRYABLE = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ENOTCONN',
  'EHOSTUNREACH',
  'ECONNABORTED',
  'UND_ERR_SOCKET', // undici: the app closed the socket before answering
]);

export function isRetryableConnectError(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' && RETRYABLE.has(code);
}
