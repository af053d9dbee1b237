/**
 * The sidecar's replay rule, as data: which failed calls of the app may be
 * sent again (sidecar/app-client.ts's retry), and how long to wait between them.
 */
import type { BackoffOptions } from '../shared/retry.js';

/** The waits between calls of an app that refuses connections: 100 ms doubling to 1 s, jittered (from 50 ms). */
export const APP_CALL_BACKOFF: BackoffOptions = { baseMs: 100, capMs: 1000, jitter: true };

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

/** Why one call of the app failed, and whether it may be repeated. */
export class CallFailure extends Error {
  constructor(
    readonly kind: 'unreachable' | 'invalid_response' | 'timeout' | 'too_large',
    message: string,
    /** True only when nothing of the request reached a connection. */
    readonly retryable: boolean,
    /** The connection was lost after the request was handed to it, before any answer. */
    readonly cutAfterSending = false,
  ) {
    super(message);
  }
}

/** Parser and protocol errors: what the app sent is not a response we can forward. */
function isMalformedResponse(code: string, err: Error): boolean {
  const message = err.message;
  return (
    err.name === 'HTTPParserError' ||
    code.startsWith('HPE_') ||
    code === 'UND_ERR_HEADERS_OVERFLOW' ||
    code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH' ||
    code === 'ERR_ASSERTION' ||
    (code === 'UND_ERR_SOCKET' && (message === 'bad upgrade' || message === 'bad response'))
  );
}

/** Methods RFC 9110 §9.2.2 lets a client retry automatically. */
export const IDEMPOTENT_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

/** A failed call: retryable only when the request never reached a connection. */
export function describeFailure(err: Error, handedToConnection: boolean, gotHeaders: boolean): CallFailure {
  const code = (err as { code?: string }).code ?? '';
  const cause = (err as { cause?: unknown }).cause as NodeJS.ErrnoException | undefined;
  if (gotHeaders || isMalformedResponse(code, err)) {
    return new CallFailure('invalid_response', `the app's response was malformed or cut off: ${err.message}`, false);
  }
  if (!handedToConnection) {
    return new CallFailure('unreachable', err.message, isRetryableConnectError(err) || isRetryableConnectError(cause));
  }
  return new CallFailure(
    'unreachable',
    `the app closed the connection before answering (${err.message}); not sent again, since the app may have read the request`,
    false,
    true,
  );
}
