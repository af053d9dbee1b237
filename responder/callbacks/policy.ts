/**
 * The pure rules of a callback delivery: what is sent, which answers count as
 * delivered, which are retried, and how long to wait before the next try.
 */
import { forwardableHeaders, normalisedHeaderName, REQUEST_ID_HEADER, type HeaderPairs } from '../../shared/http-headers.js';
import { backoff, type BackoffOptions } from '../../shared/retry.js';
import { signCallback, SIGNATURE_HEADERS } from './signature.js';

/** The app's answer, as stored: what a callback carries. */
export interface CallbackResponse {
  status: number;
  headers: HeaderPairs;
  body: Buffer;
}

export const STATUS_HEADER = 'x-kueuer-status';
export const ATTEMPT_HEADER = 'x-kueuer-attempt';

/**
 * App response headers not sent with a callback: the framing of the callback
 * request itself (content-length, host, expect), credentials a receiver would
 * read as the caller's (authorization, cookie) or that belong to the client's
 * browser only (set-cookie), and anything that could pass for the signature.
 */
const NOT_FORWARDED = new Set(['content-length', 'host', 'expect', 'authorization', 'proxy-authorization', 'cookie', 'set-cookie', 'user-agent']);

function forwarded(headers: HeaderPairs): HeaderPairs {
  return forwardableHeaders(headers).filter(([name]) => {
    const n = normalisedHeaderName(name);
    return !NOT_FORWARDED.has(n) && !n.startsWith('webhook-');
  });
}

export interface HeaderInput {
  requestId: string;
  response: CallbackResponse;
  key: Buffer;
  timestampSec: number;
  attempt: number;
  userAgent: string;
}

/** The headers of one delivery attempt: the app's safe headers, then Kueuer's and the Standard Webhooks signature. */
export function callbackHeaders(input: HeaderInput): HeaderPairs {
  const { requestId, response, key, timestampSec } = input;
  return [
    ...forwarded(response.headers),
    ['user-agent', input.userAgent],
    [STATUS_HEADER, String(response.status)],
    [REQUEST_ID_HEADER, requestId],
    [ATTEMPT_HEADER, String(input.attempt)],
    [SIGNATURE_HEADERS.id, requestId],
    [SIGNATURE_HEADERS.timestamp, String(timestampSec)],
    [SIGNATURE_HEADERS.signature, signCallback(key, requestId, timestampSec, response.body)],
  ];
}

export type StatusOutcome = 'delivered' | 'retry' | 'redirect' | 'rejected';

/** 2xx delivers; 408, 429 and 5xx are retried; a redirect is not followed; any other answer is final. */
export function outcomeOfStatus(status: number): StatusOutcome {
  if (status >= 200 && status < 300) return 'delivered';
  if (status === 408 || status === 429 || status >= 500) return 'retry';
  if (status >= 300 && status < 400) return 'redirect';
  return 'rejected';
}

/** Retry-After (delay-seconds or an HTTP-date) in milliseconds from `nowMs`; undefined when absent or malformed. */
export function parseRetryAfterMs(value: string | undefined, nowMs: number): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Math.min(Number(text) * 1000, Number.MAX_SAFE_INTEGER);
  if (!/[a-z]/i.test(text)) return undefined;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}

export interface WaitPolicy {
  backoff: BackoffOptions;
  /** The longest Retry-After honoured; a longer one is cut to this. */
  maxRetryAfterMs: number;
}

/** The dispatcher's retry defaults (docs/async-callbacks.md states the waits they give; a test checks it). */
export const CALLBACK_DEFAULTS = {
  /** Tries in all, the first included. */
  maxAttempts: 10,
  /** 2 s doubling to 5 min, each wait drawn from [half, all] of it. */
  backoff: { baseMs: 2000, capMs: 300_000, jitter: true },
  maxRetryAfterMs: 300_000,
} as const satisfies WaitPolicy & { maxAttempts: number };

/** The wait after failed attempt `attempt` (1-based): the backoff, or the receiver's Retry-After (capped) when longer. */
export function nextWaitMs(attempt: number, retryAfterMs: number | undefined, policy: WaitPolicy, random: () => number = Math.random): number {
  const wait = backoff(policy.backoff, attempt, random);
  return retryAfterMs === undefined ? wait : Math.max(wait, Math.min(retryAfterMs, policy.maxRetryAfterMs));
}
