/**
 * One callback delivery attempt: resolve the host, refuse any address the
 * policy forbids, then POST to exactly the addresses that were checked (the
 * connection's lookup is pinned to them, so DNS cannot rebind between the check
 * and the connect). Redirects are not followed. The outcome says whether the
 * callback was delivered, should be retried, or failed for good.
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import type { LookupFunction } from 'node:net';
import { Agent, request } from 'undici';
import { flattenPairs, type HeaderPairs } from '../../shared/http-headers.js';
import { addressRefusal, ipLiteral } from './address-policy.js';
import { matchHost } from './allow-list.js';
import type { CallbackTarget } from './callback-url.js';
import { outcomeOfStatus, parseRetryAfterMs } from './policy.js';

export interface ResolvedAddress {
  address: string;
  family: number;
}

/** Resolves a host name to all its addresses (dns.lookup, as connections do; tests inject their own). */
export type Lookup = (hostname: string) => Promise<ResolvedAddress[]>;

export const systemLookup: Lookup = (hostname) => dnsLookup(hostname, { all: true, order: 'verbatim' });

export type AttemptOutcome =
  | { kind: 'delivered'; status: number }
  | { kind: 'retry'; detail: string; status?: number; retryAfterMs?: number }
  | { kind: 'final'; reason: 'refused' | 'rejected' | 'redirect'; detail: string; status?: number };

export interface AttemptInput {
  target: CallbackTarget;
  headers: HeaderPairs;
  body: Buffer;
  timeoutMs: number;
  lookup: Lookup;
  now: () => number;
}

/**
 * net.connect's lookup, answering only the addresses that were checked: all of
 * them when it asks for all (Happy Eyeballs tries the next on failure, so a
 * dual-stack receiver is reached from an IPv4-only pod), else the first.
 */
function pinned(addresses: ResolvedAddress[]): LookupFunction {
  return (_hostname, options, callback) => {
    if (options.all) (callback as unknown as (err: null, all: ResolvedAddress[]) => void)(null, addresses);
    else callback(null, addresses[0]!.address, addresses[0]!.family);
  };
}

/** `work`, or a rejection when `signal` (the try's deadline) aborts first. */
function beforeDeadline<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const abort = () => reject(new Error('timed out'));
    if (signal.aborted) return abort();
    signal.addEventListener('abort', abort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', abort));
  });
}

/** The addresses to connect to, all allowed, or why not. */
async function resolve(target: CallbackTarget, lookup: Lookup, signal: AbortSignal): Promise<ResolvedAddress[] | AttemptOutcome> {
  const host = matchHost(target.url.hostname);
  const literal = ipLiteral(host);
  let addresses: ResolvedAddress[];
  if (literal) addresses = [{ address: literal, family: literal.includes(':') ? 6 : 4 }];
  else {
    try {
      addresses = await beforeDeadline(lookup(host), signal);
    } catch (err) {
      return { kind: 'retry', detail: `cannot resolve ${host}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` };
    }
    if (addresses.length === 0) return { kind: 'retry', detail: `${host} resolves to no address` };
  }
  // Any refused address refuses the host: a name that mixes public and internal addresses is not trusted.
  for (const a of addresses) {
    const refusal = addressRefusal(a.address, target.exact);
    if (refusal) return { kind: 'final', reason: 'refused', detail: `${host} resolves to ${refusal}` };
  }
  return addresses;
}

function errorText(err: unknown): string {
  const e = err as Error & { code?: string; cause?: { code?: string; message?: string } };
  if (e.name === 'TimeoutError' || e.name === 'AbortError') return 'timed out';
  return [e.code ?? e.cause?.code, e.cause?.message ?? e.message].filter(Boolean).join(': ');
}

/** One try: `timeoutMs` covers the resolution, the connect, the send and the answer's headers together. */
export async function attemptDelivery(input: AttemptInput): Promise<AttemptOutcome> {
  const signal = AbortSignal.timeout(input.timeoutMs);
  const resolved = await resolve(input.target, input.lookup, signal);
  if (!Array.isArray(resolved)) return resolved;
  const agent = new Agent({
    connect: { lookup: pinned(resolved), autoSelectFamily: true, timeout: input.timeoutMs },
    headersTimeout: input.timeoutMs,
    bodyTimeout: input.timeoutMs,
  });
  try {
    const res = await request(input.target.url, {
      method: 'POST',
      headers: flattenPairs(input.headers),
      body: input.body,
      dispatcher: agent,
      signal,
    });
    // The answer's body is not used: read a bounded amount so the connection ends cleanly, then drop it.
    await res.body.dump({ limit: 64 * 1024 }).catch(() => undefined);
    const status = res.statusCode;
    const outcome = outcomeOfStatus(status);
    if (outcome === 'delivered') return { kind: 'delivered', status };
    if (outcome === 'retry') {
      const header = res.headers['retry-after'];
      const retryAfterMs = parseRetryAfterMs(Array.isArray(header) ? header[0] : header, input.now());
      return { kind: 'retry', status, detail: `the receiver answered ${status}`, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) };
    }
    if (outcome === 'redirect') return { kind: 'final', reason: 'redirect', status, detail: `the receiver answered ${status} (redirects are not followed)` };
    return { kind: 'final', reason: 'rejected', status, detail: `the receiver answered ${status}` };
  } catch (err) {
    return { kind: 'retry', detail: `POST to ${input.target.url.origin} failed: ${errorText(err)}` };
  } finally {
    void agent.destroy().catch(() => undefined);
  }
}
