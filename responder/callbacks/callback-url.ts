/**
 * The callback URL a client names at submit time, checked against the
 * Service's allow-list before anything is queued. Pure. The address check
 * proper happens again at delivery, on the addresses the name resolves to.
 */
import { ALLOW_ANNOTATION, matchAllowList, type AllowList } from './allow-list.js';

/**
 * The request header that names the callback. Not OpenFaaS's X-Callback-Url:
 * an app behind Kueuer may read that header itself, and a client written for
 * OpenFaaS (unsigned, unchecked callbacks) should get a clear answer rather
 * than a callback with other rules; no X- prefix (RFC 6648).
 */
export const CALLBACK_URL_HEADER = 'kueuer-callback-url';

/** Longer URLs are refused (as browsers and most proxies cap them). */
export const MAX_CALLBACK_URL_LENGTH = 2048;

/** Why a callback URL is refused: the `rule` field of the 400 answer. */
export type CallbackUrlRule = 'malformed' | 'scheme' | 'userinfo' | 'fragment' | 'not_allowed';

export interface CallbackTarget {
  url: URL;
  /** The allow-list entry names this host exactly: loopback, private and link-local addresses are then allowed. */
  exact: boolean;
}

export type CallbackUrlCheck = { ok: true; target: CallbackTarget } | { ok: false; rule: CallbackUrlRule; message: string };

function refuse(rule: CallbackUrlRule, message: string): CallbackUrlCheck {
  return { ok: false, rule, message };
}

/** Checks the header's value (a repeated header arrives as an array) against the allow-list. */
export function checkCallbackUrl(raw: string | readonly string[], list: AllowList): CallbackUrlCheck {
  if (typeof raw !== 'string') {
    if (raw.length !== 1) return refuse('malformed', `send one ${CALLBACK_URL_HEADER} header, not ${raw.length}`);
    raw = raw[0]!;
  }
  const value = raw.trim();
  if (value.length > MAX_CALLBACK_URL_LENGTH) return refuse('malformed', `the callback URL is longer than ${MAX_CALLBACK_URL_LENGTH} characters`);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return refuse('malformed', `${CALLBACK_URL_HEADER} is not an absolute URL (https://host/path)`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    return refuse('scheme', `the callback URL's scheme ${url.protocol} is refused; use https (or http)`);
  if (url.username || url.password)
    return refuse('userinfo', 'the callback URL carries a user or password; put credentials in the query or path, or rely on the signature');
  if (value.includes('#')) return refuse('fragment', 'the callback URL has a fragment (#…), which is never sent; remove it');
  if (!url.hostname) return refuse('malformed', 'the callback URL has no host');
  const entry = matchAllowList(url, list);
  if (!entry) {
    const why = list.entries.length
      ? `${url.protocol}//${url.host} matches no entry of the Service's ${ALLOW_ANNOTATION}`
      : `the Service's ${ALLOW_ANNOTATION} allows no callback destination (the annotation is absent or empty)`;
    return refuse('not_allowed', why);
  }
  return { ok: true, target: { url, exact: !entry.wildcard } };
}
