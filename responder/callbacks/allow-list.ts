/**
 * The `kueuer.io/async-callback-allow` annotation: where a Service's callbacks
 * may go. Nothing is allowed when it is absent. Grammar (comma-separated,
 * spaces around entries ignored):
 *
 *   entry    = scheme "://" host [":" port]        an exact origin
 *            | scheme "://*." domain [":" port]    any host strictly below domain
 *   scheme   = "https" | "http"
 *   host     = DNS name | IPv4 | "[" IPv6 "]"
 *
 * The port defaults to the scheme's (443, 80). No userinfo, path, query or
 * fragment. A wildcard needs at least two labels after "*." and never matches
 * an IP address. Only an exact entry lets a callback reach loopback, private or
 * link-local addresses (see address-policy.ts).
 */
import { ANNOTATIONS } from '../../shared/annotations.js';
import { addressRefusal, ipLiteral } from './address-policy.js';

export const ALLOW_ANNOTATION = ANNOTATIONS.asyncCallbackAllow;

export interface AllowEntry {
  scheme: 'http:' | 'https:';
  /** Lower-case, without a trailing dot; IPv6 in brackets as URL.hostname writes it. For a wildcard: the domain below which hosts match. */
  host: string;
  port: number;
  wildcard: boolean;
}

export interface AllowList {
  entries: AllowEntry[];
}

export type ParsedAllowList = { ok: true; value: AllowList } | { ok: false; problem: string };

const DEFAULT_PORT = { 'http:': 80, 'https:': 443 } as const;
const ENTRY_FORM = 'use https://host[:port], http://host[:port] or https://*.domain[:port]';

/** The host as matched: URL.hostname without a trailing dot. */
export function matchHost(hostname: string): string {
  return hostname.endsWith('.') ? hostname.slice(0, -1) : hostname;
}

/** The port a URL connects to. */
export function effectivePort(url: URL): number {
  return url.port ? Number(url.port) : DEFAULT_PORT[url.protocol as keyof typeof DEFAULT_PORT];
}

function parseEntry(raw: string): AllowEntry | string {
  const m = /^(https?):\/\/(.*)$/i.exec(raw);
  if (!m) return ENTRY_FORM;
  const rest = m[2]!;
  if (/[/?#]/.test(rest)) return 'an entry is an origin: no path, query or fragment';
  if (rest.includes('@')) return 'no user or password in an entry';
  const wildcard = rest.startsWith('*.');
  const hostPort = wildcard ? rest.slice(2) : rest;
  if (hostPort.includes('*')) return 'use "*." only as the first label (https://*.example.com)';
  let url: URL;
  try {
    url = new URL(`${m[1]!.toLowerCase()}://${hostPort}/`);
  } catch {
    return `not a valid origin; ${ENTRY_FORM}`;
  }
  const host = matchHost(url.hostname);
  if (!host) return `no host; ${ENTRY_FORM}`;
  const literal = ipLiteral(host);
  if (wildcard) {
    if (literal) return 'a wildcard matches DNS names, not an IP address; name the address exactly';
    if (host.split('.').length < 2) return 'a wildcard needs at least two labels after "*." (https://*.example.com)';
  } else if (literal) {
    const never = addressRefusal(literal, true);
    if (never) return never;
  }
  return { scheme: url.protocol as AllowEntry['scheme'], host, port: effectivePort(url), wildcard };
}

/** The annotation's value, read once per Service change: the entries, or a problem naming the bad entry. */
export function parseAllowList(raw: string | undefined): ParsedAllowList {
  if (raw === undefined || raw.trim() === '') return { ok: true, value: { entries: [] } };
  const entries: AllowEntry[] = [];
  const parts = raw.split(',');
  for (const [i, part] of parts.entries()) {
    const text = part.trim();
    const where = `entry ${i + 1}`;
    if (!text) return { ok: false, problem: `${ALLOW_ANNOTATION}: ${where} is empty; separate origins with single commas` };
    const entry = parseEntry(text);
    if (typeof entry === 'string') return { ok: false, problem: `${ALLOW_ANNOTATION}: ${where} ${JSON.stringify(text)} is not accepted: ${entry}` };
    entries.push(entry);
  }
  return { ok: true, value: { entries } };
}

/** The first entry that allows `url` (scheme, host and port), or undefined. */
export function matchAllowList(url: URL, list: AllowList): AllowEntry | undefined {
  const host = matchHost(url.hostname);
  const port = effectivePort(url);
  const isLiteral = ipLiteral(host) !== undefined;
  return list.entries.find((e) => e.scheme === url.protocol && e.port === port && (e.wildcard ? !isLiteral && host.endsWith(`.${e.host}`) : e.host === host));
}
