/**
 * Header rules shared by the responder (client side) and the sidecar (app side).
 * Headers travel as ordered [name, value] pairs so repeated headers such as
 * set-cookie keep their count and order.
 */
export type HeaderPairs = Array<[string, string]>;

/** RFC 9110 §7.6.1 hop-by-hop headers, plus the legacy ones proxies also drop. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/** Prefix of the headers Kueuer itself sets; clients and apps cannot supply them. */
export const KUEUER_HEADER_PREFIX = 'x-kueuer-';
export const REQUEST_ID_HEADER = 'x-kueuer-request-id';
export const REDELIVERED_HEADER = 'x-kueuer-redelivered';
export const DEADLINE_HEADER = 'x-kueuer-deadline';

/** Node's rawHeaders is a flat [name, value, name, value, …] list. */
export function pairsFromRaw(raw: readonly string[]): HeaderPairs {
  const pairs: HeaderPairs = [];
  for (let i = 0; i + 1 < raw.length; i += 2) pairs.push([raw[i]!, raw[i + 1]!]);
  return pairs;
}

export function flattenPairs(pairs: HeaderPairs): string[] {
  const flat: string[] = [];
  for (const [name, value] of pairs) flat.push(name, value);
  return flat;
}

/**
 * A header name as servers that map headers to variables see it: CGI, WSGI,
 * Rack and PHP turn `X_Kueuer_Id` and `X-Kueuer-Id` into the same
 * HTTP_X_KUEUER_ID, so reserved names are matched in this form.
 */
export function normalisedHeaderName(name: string): string {
  const lower = name.toLowerCase();
  return lower.includes('_') ? lower.replaceAll('_', '-') : lower;
}

/**
 * Drops hop-by-hop headers (including any named by Connection) and Kueuer's
 * own x-kueuer-* headers, in any spelling that normalises to one of them
 * (case, `_` for `-`). Content-Length stays: each side decides whether to
 * recompute it (see withoutHeader).
 */
export function forwardableHeaders(pairs: HeaderPairs): HeaderPairs {
  const named = new Set<string>();
  for (const [name, value] of pairs) {
    if (normalisedHeaderName(name) === 'connection') {
      for (const token of value.split(',')) named.add(normalisedHeaderName(token.trim()));
    }
  }
  return pairs.filter(([name]) => {
    const normal = normalisedHeaderName(name);
    return !HOP_BY_HOP.has(normal) && !named.has(normal) && !normal.startsWith(KUEUER_HEADER_PREFIX);
  });
}

/**
 * The client-address headers, under one trust rule: what the client sent is
 * kept as the history it claims, and the peer's address, the one fact Kueuer
 * knows, is the last (or only) value, so an app never reads a client-made
 * value where it expects the peer. Repeated headers are merged first, in order
 * (RFC 9110 §5.3), in any spelling that normalises to the name.
 * - X-Forwarded-For: the peer is appended (one is added when the client sent none);
 * - Forwarded (RFC 7239): a `for=` element naming the peer is appended, when the client sent one;
 * - X-Real-IP (a single address): replaced by the peer's, when the client sent one, unless
 *   the peer is a trusted proxy (--trusted-proxies), which set it to the client it saw.
 */
export function withClientAddress(pairs: HeaderPairs, remote: string | undefined, trusted: TrustedProxies = NO_TRUSTED_PROXIES): HeaderPairs {
  if (!remote) return pairs;
  const sent = new Map<string, string[]>();
  const out: HeaderPairs = [];
  for (const pair of pairs) {
    const normal = normalisedHeaderName(pair[0]);
    if (CLIENT_ADDRESS_HEADERS.has(normal)) sent.set(normal, [...(sent.get(normal) ?? []), pair[1]]);
    else out.push(pair);
  }
  out.push(['x-forwarded-for', [...(sent.get('x-forwarded-for') ?? []), remote].join(', ')]);
  const forwarded = sent.get('forwarded');
  if (forwarded) out.push(['forwarded', [...forwarded, `for=${forwardedNode(remote)}`].join(', ')]);
  const realIp = sent.get('x-real-ip');
  if (realIp) out.push(['x-real-ip', trusted.has(remote) && realIp.length === 1 ? realIp[0]! : remote]);
  return out;
}

const CLIENT_ADDRESS_HEADERS = new Set(['x-forwarded-for', 'forwarded', 'x-real-ip']);

/** An address as a Forwarded node (RFC 7239 §6): IPv6 in brackets, quoted. */
function forwardedNode(address: string): string {
  return address.includes(':') ? `"[${address}]"` : address;
}

export function headerValue(pairs: HeaderPairs, name: string): string | undefined {
  const lower = name.toLowerCase();
  return pairs.find(([n]) => n.toLowerCase() === lower)?.[1];
}

export function withoutHeader(pairs: HeaderPairs, name: string): HeaderPairs {
  const lower = name.toLowerCase();
  return pairs.filter(([n]) => n.toLowerCase() !== lower);
}
import { NO_TRUSTED_PROXIES, type TrustedProxies } from './trusted-proxies.js';
