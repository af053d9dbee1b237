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

/** An absolute-form target's scheme and authority (RFC 9112 §3.2.2: a server must accept it). */
const ABSOLUTE_FORM = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*/;
/** Anything that can make a target's path read differently once normalized. */
const NEEDS_NORMALIZING = /[%\\]|\/\/|\/\.\.?(?:[/?#]|$)/;
/** RFC 3986 §2.3: percent-encoded unreserved characters are the characters themselves. */
const ENCODED_UNRESERVED = /%(?:[46][1-9A-Fa-f]|[57][0-9Aa]|3[0-9]|2[DEde]|5[Ff]|7[Ee])/g;

/** The path of a request target as sent: without scheme and authority (absolute form), query and fragment. */
function pathOf(target: string): string {
  const path = target.replace(ABSOLUTE_FORM, '');
  const end = path.search(/[?#]/);
  return end < 0 ? path : path.slice(0, end);
}

/** Removes `.` and `..` segments (RFC 3986 §5.2.4); with `mergeSlashes`, empty segments too. */
function removeDotSegments(segments: readonly string[], mergeSlashes: boolean): string {
  const out: string[] = [];
  segments.forEach((seg, i) => {
    const last = i === segments.length - 1;
    if (seg === '.' || seg === '..') {
      if (seg === '..') out.pop();
      if (last) out.push('');
    } else if (seg !== '' || !mergeSlashes || last) out.push(seg);
  });
  return `/${out.join('/')}`;
}

/** Decodes every percent escape once; a malformed one stays as sent. */
function decodeOnce(path: string): string {
  return path.replace(/%[0-9A-Fa-f]{2}/g, (e) => String.fromCharCode(parseInt(e.slice(1), 16)));
}

/**
 * The forms of a target's path that an app, a framework or a proxy in front of it may act on:
 * as sent; normalized as RFC 3986 §6.2.2 says (percent-encoded unreserved characters decoded,
 * `.` and `..` segments removed); and loosely, as many servers do (every escape decoded once,
 * `\` read as `/`, runs of `/` merged, dot segments removed). The last is what a status request
 * is resolved on.
 */
export function pathForms(target: string): string[] {
  const raw = pathOf(target);
  if (!NEEDS_NORMALIZING.test(raw) && raw.startsWith('/')) return [raw];
  const rfc = removeDotSegments(
    raw
      .replace(ENCODED_UNRESERVED, (e) => String.fromCharCode(parseInt(e.slice(1), 16)))
      .split('/')
      .slice(1),
    false,
  );
  const loose = removeDotSegments(decodeOnce(raw).replaceAll('\\', '/').split('/').slice(1), true);
  return [raw, rfc, loose];
}

const underReserved = (path: string): boolean => path === RESERVED_PREFIX.slice(0, -1) || path.startsWith(RESERVED_PREFIX);

/**
 * Whether a request target is Kueuer's (with kueuer.io/async on): its path, in any of its
 * forms (pathForms), is `/.kueuer` or under `/.kueuer/`. So the app never receives a target
 * that it, or a proxy in front of it, could read as the status path; every other target
 * reaches it unchanged.
 */
export function isReservedTarget(target: string): boolean {
  return pathForms(target).some(underReserved);
}

/**
 * Parses a reserved target: `/.kueuer/requests/<id>[?wait=30s]`, resolved on its loosely
 * normalized path (pathForms). A malformed id, or any other reserved path, is a 404 like an
 * unknown id.
 */
export function parseStatusTarget(target: string): StatusTarget {
  const path = pathForms(target).at(-1)!;
  // Any other path under the reserved prefix (a look-alike such as /.kueuer/requestsX<id>) is no request.
  const id = path.startsWith(STATUS_PREFIX) ? path.slice(STATUS_PREFIX.length) : path;
  if (!isRequestId(id)) return { ok: false, notFound: true, message: `no asynchronous request ${JSON.stringify(id.slice(0, 64))} here` };
  const query = target.replace(ABSOLUTE_FORM, '');
  const q = query.indexOf('?');
  const hash = query.indexOf('#', q);
  const params = new URLSearchParams(q < 0 ? '' : query.slice(q + 1, hash < 0 ? undefined : hash));
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
