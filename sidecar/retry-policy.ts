/** Exponential backoff with full jitter: 50 ms, 100 ms, … capped at 1 s. */
export function backoffMs(attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(1000, 50 * 2 ** Math.min(attempt, 10));
  return Math.floor(ceiling / 2 + random() * (ceiling / 2));
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
