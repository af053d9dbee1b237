/**
 * What a request must look like to travel through the queue and be replayed
 * to the app, as pure checks. The responder runs them before publishing (and
 * answers the client at once with the problem's status); the envelope runs the
 * same checks when decoding, so a message from anywhere else can never make
 * the sidecar's HTTP client refuse a dispatch.
 *
 * The rules are the intersection of RFC 9112 and what the sidecar's HTTP
 * client (undici) will send: an origin-form target of visible octets, header
 * names that are tokens, header values of visible octets, SP and HTAB, and at
 * most one Host.
 */
import type { ClientErrorCode } from './error-catalogue.js';
import type { HeaderPairs } from './http-headers.js';

/** Limits on what one request may carry; the envelope enforces the same numbers. */
export const REQUEST_LIMITS = {
  /** Request target (path and query) in bytes; common proxies accept 8–64 KiB. */
  targetBytes: 16 * 1024,
  /** The header list as the envelope encodes it (JSON), in bytes. */
  headersJsonBytes: 48 * 1024,
} as const;

export type RequestProblemCode = Extract<ClientErrorCode, 'invalid_target' | 'uri_too_long' | 'invalid_header' | 'headers_too_large'>;

export interface RequestProblem {
  code: RequestProblemCode;
  status: 400 | 414 | 431;
  message: string;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Visible octets only (latin1 code points 0x21–0xff): no space, no control character. */
const TARGET_CHARS = /^[\u0021-\u007e\u0080-\u00ff]*$/;
/** RFC 9110 field-value octets: HTAB, SP, visible ASCII and obs-text. */
const FIELD_VALUE = /^[\t\u0020-\u007e\u0080-\u00ff]*$/;

export function isToken(s: string): boolean {
  return TOKEN.test(s);
}

/** The request target, as the client sent it (Node's `req.url`). */
export function targetProblem(target: string): RequestProblem | null {
  if (Buffer.byteLength(target) > REQUEST_LIMITS.targetBytes) {
    return { code: 'uri_too_long', status: 414, message: `the request target is longer than ${REQUEST_LIMITS.targetBytes} bytes` };
  }
  if (!target.startsWith('/')) {
    const form = target === '*' ? 'asterisk-form (*)' : /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(target) ? 'absolute-form' : 'authority-form';
    return { code: 'invalid_target', status: 400, message: `the request target must be a path starting with "/" (origin-form); got the ${form}` };
  }
  if (!TARGET_CHARS.test(target)) {
    return { code: 'invalid_target', status: 400, message: 'the request target holds whitespace, control or non-latin1 characters' };
  }
  return null;
}

/**
 * The headers that will be forwarded (already without hop-by-hop ones).
 * `encodedBytes` is the size of their envelope encoding, when the caller has it.
 */
export function headersProblem(pairs: HeaderPairs, encodedBytes?: number, side: 'request' | 'response' = 'request'): RequestProblem | null {
  let hosts = 0;
  for (const [name, value] of pairs) {
    if (!TOKEN.test(name)) return { code: 'invalid_header', status: 400, message: 'a header name is not an HTTP token' };
    if (!FIELD_VALUE.test(value)) return { code: 'invalid_header', status: 400, message: `header ${name} holds a control or non-latin1 character` };
    if (name.length === 4 && name.toLowerCase() === 'host' && ++hosts > 1) {
      return { code: 'invalid_header', status: 400, message: 'the request has more than one Host header (RFC 9112 §3.2)' };
    }
  }
  const bytes = encodedBytes ?? encodedSize(pairs);
  if (bytes > REQUEST_LIMITS.headersJsonBytes) {
    return {
      code: 'headers_too_large',
      status: 431,
      message: `the ${side} headers take ${bytes} bytes; at most ${REQUEST_LIMITS.headersJsonBytes} can be queued`,
    };
  }
  return null;
}

/** A response's headers: any header may repeat (Host has no meaning there); the same name, value and size rules. */
export function responseHeadersProblem(pairs: HeaderPairs, encodedBytes?: number): RequestProblem | null {
  return headersProblem(
    pairs.filter(([n]) => n.toLowerCase() !== 'host'),
    encodedBytes,
    'response',
  );
}

/**
 * The size of the header list as the envelope encodes it (JSON). A cheap upper
 * bound is tried first (every character at most 2 bytes once valid: obs-text is
 * 2 bytes in UTF-8, `"` and `\\` are escaped to 2; plus `["",""],` per pair),
 * so the usual request is not encoded twice; only one near the limit is.
 */
function encodedSize(pairs: HeaderPairs): number {
  let bound = 2;
  for (const [name, value] of pairs) bound += 2 * (name.length + value.length) + 8;
  return bound <= REQUEST_LIMITS.headersJsonBytes ? bound : Buffer.byteLength(JSON.stringify(pairs));
}
