/**
 * The asynchronous request protocol, pure: RFC 7240's `Prefer: respond-async`,
 * the status path the responder reserves, `?wait=` and the idempotency
 * fingerprint.
 */
import { createHash } from 'node:crypto';
import type { AsyncMode } from '../../shared/annotations.js';
import type { HeaderPairs } from '../../shared/http-headers.js';
import { isRequestId } from '../../shared/request-id.js';

/**
 * The status path prefix. With kueuer.io/async on, paths under `/.kueuer/`
 * are the responder's and never reach the app: a dot-segment name no web
 * framework generates, so an app's own routes do not meet it.
 */
export const STATUS_PREFIX = '/.kueuer/requests/';
export const RESERVED_PREFIX = '/.kueuer/';
/** The longest `?wait=` a poll may ask for. */
export const MAX_WAIT_MS = 60_000;
/** What a client is told to wait before polling again. */
export const RETRY_AFTER_SECONDS = 1;

export function statusLocation(id: string): string {
  return `${STATUS_PREFIX}${id}`;
}

const isRespondAsync = (preference: string): boolean => preference.split(';')[0]!.split('=')[0]!.trim().toLowerCase() === 'respond-async';

/** Whether a request with these Prefer header values asks to be answered asynchronously (RFC 7240 §4.1). */
export function prefersRespondAsync(prefer: string | string[] | undefined): boolean {
  if (prefer === undefined) return false;
  const values = Array.isArray(prefer) ? prefer : [prefer];
  return values.some((v) => v.split(',').some(isRespondAsync));
}

/**
 * The request's headers without the respond-async preference Kueuer applied: an app that knows
 * RFC 7240 would otherwise answer 202 itself, and that 202 would be the stored result. Other
 * preferences pass; a Prefer left empty is dropped.
 */
export function withoutRespondAsync(headers: HeaderPairs): HeaderPairs {
  const out: HeaderPairs = [];
  for (const [name, value] of headers) {
    if (name.toLowerCase() !== 'prefer') {
      out.push([name, value]);
      continue;
    }
    const kept = value
      .split(',')
      .filter((p) => p.trim() !== '' && !isRespondAsync(p))
      .map((p) => p.trim());
    if (kept.length > 0) out.push([name, kept.join(', ')]);
  }
  return out;
}

/** Whether this request is answered 202 and run in the background. */
export function isAsyncRequest(mode: AsyncMode, prefer: string | string[] | undefined): boolean {
  return mode === 'always' || (mode === 'on-request' && prefersRespondAsync(prefer));
}

export type StatusTarget = { ok: true; id: string; waitMs: number } | { ok: false; notFound: boolean; message: string };

/** Parses `/.kueuer/requests/<id>[?wait=30s]`; a malformed id is a 404 like an unknown one. */
export function parseStatusTarget(target: string): StatusTarget {
  const q = target.indexOf('?');
  const path = target.slice(0, q < 0 ? undefined : q);
  // Any other path under the reserved prefix (a look-alike such as /.kueuer/requestsX<id>) is no request.
  const id = path.startsWith(STATUS_PREFIX) ? path.slice(STATUS_PREFIX.length) : path;
  if (!isRequestId(id)) return { ok: false, notFound: true, message: `no asynchronous request ${JSON.stringify(id.slice(0, 64))} here` };
  const params = new URLSearchParams(q < 0 ? '' : target.slice(q + 1));
  const raw = params.get('wait');
  if (raw === null) return { ok: true, id, waitMs: 0 };
  const m = /^(\d{1,6})(ms|s)?$/.exec(raw);
  const ms = m ? Number(m[1]) * (m[2] === 'ms' ? 1 : 1_000) : NaN;
  if (!m || ms > MAX_WAIT_MS) {
    return {
      ok: false,
      notFound: false,
      message: `wait=${JSON.stringify(raw.slice(0, 32))}: use a duration up to ${MAX_WAIT_MS / 1_000}s, such as 30s or 500ms`,
    };
  }
  return { ok: true, id, waitMs: ms };
}

/** What a repeat with the same Idempotency-Key must match: method, target, callback URL and body. */
export function requestFingerprint(method: string, path: string, body: Buffer, callbackUrl?: string): string {
  const h = createHash('sha256').update(method).update('\0').update(path).update('\0');
  // Without a callback, the fingerprint of before callbacks: keys claimed before an upgrade still match.
  if (callbackUrl !== undefined) h.update('callback\0').update(callbackUrl).update('\0');
  return h.update(body).digest('hex');
}
