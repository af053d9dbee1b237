/** How the responder writes answers: the app's, as it was, and Kueuer's own on a raw socket. */
import { STATUS_CODES, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { flattenPairs, forwardableHeaders, headerValue, REQUEST_ID_HEADER, withoutHeader, type HeaderPairs } from '../shared/http-headers.js';

/** An answer written straight to a socket Node's HTTP server has let go of (CONNECT). */
export function writeRawError(socket: Duplex, status: number, body: Buffer, id: string): void {
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n` +
      `connection: close\r\n${REQUEST_ID_HEADER}: ${id}\r\n\r\n${body.toString()}`,
  );
}

/**
 * Writes the app's response as it was: status, header names and repeated
 * headers in order, and the body. Content-Length is recomputed from the body,
 * except for HEAD and 304, whose Content-Length describes a body not sent.
 * With trailers (and a body to send to an HTTP/1.1 client) the body is sent
 * chunked instead, announced by a Trailer header, and the trailers follow it.
 */
export interface WriteOptions {
  isHead?: boolean;
  /** The app's own reason phrase; Node's standard one otherwise. */
  reason?: string | undefined;
  closeConnection?: boolean;
  /** The app's trailer fields. */
  trailers?: HeaderPairs | undefined;
}

export function writeResponse(res: ServerResponse, id: string, status: number, headers: HeaderPairs, body: Buffer, how: WriteOptions): void {
  if (res.destroyed || res.headersSent) return;
  const isHead = how.isHead === true;
  const out = withoutHeader(forwardableHeaders(headers), 'content-length');
  const bodyless = isHead || status === 204 || status === 304;
  const trailers = how.trailers ?? [];
  const chunkedWithTrailers = trailers.length > 0 && !bodyless && res.req.httpVersion === '1.1';
  // The app's own spelling of the name, as for every other header.
  const lengthName = headers.find(([n]) => n.length === 14 && n.toLowerCase() === 'content-length')?.[0] ?? 'content-length';
  if (isHead || status === 304) {
    const declared = headerValue(headers, 'content-length');
    if (declared !== undefined) out.push([lengthName, declared]);
  } else if (status !== 204 && !chunkedWithTrailers) {
    out.push([lengthName, String(body.length)]);
  }
  if (chunkedWithTrailers) out.push(['trailer', trailers.map(([n]) => n).join(', ')]);
  if (how.closeConnection) out.push(['connection', 'close']);
  out.push([REQUEST_ID_HEADER, id]);
  if (how.reason !== undefined) res.writeHead(status, how.reason, flattenPairs(out));
  else res.writeHead(status, flattenPairs(out));
  if (chunkedWithTrailers) res.addTrailers(trailers);
  res.end(bodyless ? undefined : body);
}
