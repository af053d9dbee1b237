/**
 * Why a request cannot be queued, known before its body is read: pure
 * functions of the request line and headers.
 */
import type { IncomingMessage } from 'node:http';
import type { ClientErrorCode } from '../shared/error-catalogue.js';
import { forwardableHeaders, pairsFromRaw, withClientAddress, type HeaderPairs } from '../shared/http-headers.js';
import type { TrustedProxies } from '../shared/trusted-proxies.js';
import { headersProblem, targetProblem, type RequestProblem } from '../shared/request-rules.js';
import { BodyTooLargeError } from './read-body.js';

export type RefusalProblem = Pick<RequestProblem, 'message'> & { status: number; code: ClientErrorCode };

/** The headers the app is sent: the client's, less hop-by-hop ones, plus X-Forwarded-For. */
export function forwardedHeaders(req: IncomingMessage, trusted?: TrustedProxies): HeaderPairs {
  return withClientAddress(forwardableHeaders(pairsFromRaw(req.rawHeaders)), req.socket.remoteAddress, trusted);
}

/** Over --max-body by its declared length: known before a byte of the body is read. */
export function expectedBodyProblem(req: IncomingMessage, maxBodyBytes: number): RefusalProblem | null {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > maxBodyBytes) {
    return { status: 413, code: 'body_too_large', message: new BodyTooLargeError(maxBodyBytes).message };
  }
  return null;
}

/**
 * Why a request cannot be queued, known from its request line and headers
 * alone: a protocol switch, or a target or headers the envelope cannot carry.
 */
export function requestProblem(req: IncomingMessage, forwarded: HeaderPairs): RefusalProblem | null {
  const upgrade = req.headers.upgrade;
  if (upgrade !== undefined && upgrade.toLowerCase() !== 'h2c') {
    // h2c is an optional upgrade a server may ignore (curl --http2 sends it); any other
    // (WebSocket) needs a connection the queue cannot carry.
    return {
      status: 501,
      code: 'upgrade_not_supported',
      message: `Upgrade: ${upgrade.slice(0, 64)} (e.g. WebSocket) needs a live connection to the app, which a queue cannot carry`,
    };
  }
  if (req.httpVersion === '1.1' && req.headers.host === undefined) {
    return { status: 400, code: 'invalid_header', message: 'an HTTP/1.1 request needs a Host header (RFC 9112 §3.2)' };
  }
  return targetProblem(req.url ?? '') ?? headersProblem(forwarded);
}
