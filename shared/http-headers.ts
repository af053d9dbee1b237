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
 * Drops hop-by-hop headers (including any named by Connection) and Kueuer's
 * own x-kueuer-* headers. Content-Length stays: each side decides whether to
 * recompute it (see withoutHeader).
 */
export function forwardableHeaders(pairs: HeaderPairs): HeaderPairs {
  const named = new Set<string>();
  for (const [name, value] of pairs) {
    if (name.toLowerCase() === 'connection') {
      for (const token of value.split(',')) named.add(token.trim().toLowerCase());
    }
  }
  return pairs.filter(([name]) => {
    const lower = name.toLowerCase();
    return (
      !HOP_BY_HOP.has(lower) &&
      !named.has(lower) &&
      !lower.startsWith(KUEUER_HEADER_PREFIX)
    );
  });
}

export function headerValue(pairs: HeaderPairs, name: string): string | undefined {
  const lower = name.toLowerCase();
  return pairs.find(([n]) => n.toLowerCase() === lower)?.[1];
}

export function withoutHeader(pairs: HeaderPairs, name: string): HeaderPairs {
  const lower = name.toLowerCase();
  return pairs.filter(([n]) => n.toLowerCase() !== lower);
}
