/**
 * The responder's HTTP server: Fastify for the life cycle (listen, close,
 * client errors) around a plain node:http handler, and the answers Kueuer
 * gives before a request reaches the per-request flow: requests Node's parser
 * refuses, CONNECT, Expect: 100-continue, and requests arriving while the
 * server closes. Every one is a JSON error from the catalogue.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { errorBody, type ClientErrorCode } from '../shared/error-catalogue.js';
import { newRequestId } from '../shared/request-id.js';
import type { ResponderSettings } from './config.js';
import type { ResponderMetrics } from './metrics.js';
import { expectedBodyProblem, forwardedHeaders, requestProblem } from './refusals.js';
import { writeRawError, writeResponse } from './write-response.js';

/** The request line and headers Node's parser accepts; Kueuer's own limits (request-rules) answer first below it. */
const MAX_HEADER_SECTION_BYTES = 128 * 1024;
/** Header fields (lines) Node's parser accepts in one request; past it, it fails with the same code as for size. */
const MAX_HEADER_FIELDS = 1000;
/**
 * How often Node checks its connections against the headers timeout: the 408 comes at most this late
 * (Node's default of 30 s made a 60 s timeout fire at up to 90 s).
 */
const CONNECTIONS_CHECK_INTERVAL_MS = 1_000;

export interface HttpServerContext {
  settings: Pick<ResponderSettings, 'headersTimeoutMs' | 'maxBodyBytes' | 'trustedProxies'>;
  metrics: ResponderMetrics;
  log: Logger;
  /** Connections whose request body is being read: a close there is that request's client disconnect, counted by the flow. */
  readingBody: WeakSet<object>;
  /** The per-request flow, for every request Kueuer does not refuse here. */
  handle: (req: IncomingMessage, res: ServerResponse, id: string) => void;
}

export function createHttpServer(ctx: HttpServerContext): FastifyInstance {
  const { settings, metrics, log } = ctx;
  /** Set when the server starts closing: new requests get a 503 and the connection closes. */
  let closing = false;
  const app = Fastify({
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion -- it fixes Fastify's logger generic to FastifyBaseLogger, which the instance's declared type needs
    loggerInstance: log as FastifyBaseLogger,
    clientErrorHandler: (err, socket) => onClientError(ctx, err, socket),
    // Every request is the app's, so the hot path is a plain node:http handler: fastify keeps the server's
    // life cycle (listen, close, clientError) but no request goes through its router, its request and
    // reply objects or a per-request child logger (measured: docs/benchmarks.md).
    serverFactory: () => {
      // Room for a 16 KiB target plus 48 KiB of headers; beyond it Node's parser answers 431 itself.
      // A missing Host gets Kueuer's 400 (refusals.ts).
      const server = http.createServer(
        {
          maxHeaderSize: MAX_HEADER_SECTION_BYTES,
          requireHostHeader: false,
          headersTimeout: settings.headersTimeoutMs,
          // No whole-request timeout (--body-timeout is ours), as fastify's servers.
          requestTimeout: 0,
          connectionsCheckingInterval: CONNECTIONS_CHECK_INTERVAL_MS,
        },
        (req, res) => {
          const id = newRequestId();
          if (closing) return refuseWhileClosing(ctx, res, id);
          ctx.handle(req, res, id);
        },
      );
      server.maxHeadersCount = MAX_HEADER_FIELDS;
      // fastify's default keep-alive for the servers it makes.
      server.keepAliveTimeout = 72_000;
      return server;
    },
  });
  app.addHook('preClose', (done) => {
    closing = true;
    done();
  });
  // CONNECT asks for a tunnel, not a request for the app: Node hands it to 'connect' (without a
  // listener it would just close the socket).
  app.server.on('connect', (_req: IncomingMessage, socket: Duplex) => {
    const id = newRequestId();
    writeRawError(socket, 501, errorBody('connect_not_supported', 'CONNECT (a tunnel) cannot be queued; send plain HTTP requests', id), id);
    metrics.answered(501, 0);
    log.info({ reqId: id, status: 501, method: 'CONNECT' }, 'refused a CONNECT request');
  });
  // Expect: 100-continue is settled here: a request Kueuer would refuse gets its answer instead
  // of an invitation to send the body.
  app.server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    const problem = expectedBodyProblem(req, settings.maxBodyBytes) ?? requestProblem(req, forwardedHeaders(req, settings.trustedProxies));
    if (problem) {
      const id = newRequestId();
      writeResponse(res, id, problem.status, [['content-type', 'application/json']], errorBody(problem.code, problem.message, id), { closeConnection: true });
      res.once('finish', () => req.destroy());
      metrics.answered(problem.status, 0);
      log.info({ reqId: id, status: problem.status, code: problem.code }, 'refused a request before its body (Expect: 100-continue)');
      return;
    }
    res.writeContinue();
    app.server.emit('request', req, res);
  });
  return app;
}

/** A request on a kept-alive connection after the close began: 503, and the connection closes. */
function refuseWhileClosing(ctx: HttpServerContext, res: ServerResponse, id: string): void {
  const message = 'this responder is shutting down; retry, another replica will take the request';
  writeResponse(res, id, 503, [['content-type', 'application/json']], errorBody('shutting_down', message, id), { closeConnection: true });
  ctx.metrics.answered(503, 0);
  ctx.log.info({ reqId: id, status: 503, code: 'shutting_down' }, 'refused a request: shutting down');
}

/**
 * Requests Node's parser refuses (smuggling forms, obs-fold, oversize or slow headers) get Kueuer's JSON
 * answer and a log line with a request id; never the raw bytes (they hold cookies and tokens).
 */
function onClientError(ctx: HttpServerContext, err: NodeJS.ErrnoException & { bytesParsed?: number }, socket: Duplex): void {
  const { settings, metrics, log } = ctx;
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  if (err.code === 'HPE_INVALID_EOF_STATE') {
    // The client closed in the middle of a request: a disconnect, not a malformed request. One
    // whose body was being read is counted and logged once, by its own handler (the flow).
    if (!ctx.readingBody.has(socket)) {
      metrics.clientDisconnect();
      log.info({ reqId: newRequestId() }, 'client went away before its request was complete');
    }
    socket.destroy();
    return;
  }
  const id = newRequestId();
  const [status, code, message]: [number, ClientErrorCode, string] =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [408, 'request_timeout', `the request line and headers did not arrive within ${settings.headersTimeoutMs} ms`]
      : err.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'headers_too_large', headerOverflowMessage(err.bytesParsed ?? 0)]
        : [400, 'malformed_request', `the request is not valid HTTP/1.1 (${err.code ?? 'parse error'}); nothing was queued`];
  log.info({ reqId: id, status, code, cause: err.code }, 'refused a malformed request');
  metrics.answered(status, 0);
  if (socket.writable) writeRawError(socket, status, errorBody(code, message, id), id);
  else socket.destroy();
}

/** Node's parser fails the same way past MAX_HEADER_SECTION_BYTES and past MAX_HEADER_FIELDS: tell which. */
function headerOverflowMessage(bytesParsed: number): string {
  return bytesParsed < MAX_HEADER_SECTION_BYTES
    ? `the request has more than ${MAX_HEADER_FIELDS} header fields`
    : `the request line and headers are over ${MAX_HEADER_SECTION_BYTES} bytes`;
}
