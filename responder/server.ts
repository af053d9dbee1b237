/**
 * The responder: Kueuer's front door. Every method and path on the listen
 * port is the app's. A request is published to the queue, its client is held,
 * and the app's exact status, headers and body are written back when the
 * reply reaches this replica's private inbox.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { decodeResponse, encodeRequest, META, type QueuedResponse, type WireMessage } from '../shared/envelope.js';
import { errorBody, type ClientErrorCode } from '../shared/error-catalogue.js';
import { isKueuerError } from '../shared/errors.js';
import { forwardableHeaders, pairsFromRaw, withClientAddress, type HeaderPairs } from '../shared/http-headers.js';
import { headersProblem, responseHeadersProblem, targetProblem, type RequestProblem } from '../shared/request-rules.js';
import { isRequestId, newRequestId } from '../shared/request-id.js';
import type { ReplyInbox, Transport } from '../shared/transport/transport.js';
import type { ResponderSettings } from './config.js';
import type { ResponderMetrics } from './metrics.js';
import { PendingRequests } from './pending-requests.js';
import { lingerAfterAnswer } from './linger.js';
import { writeRawError, writeResponse, type WriteOptions } from './write-response.js';
import { BodyTimeoutError, BodyTooLargeError, readBody } from './read-body.js';

export interface Responder {
  app: FastifyInstance;
  pending: PendingRequests;
  /** Stops accepting clients, then waits up to drainTimeoutMs for held ones. */
  drain(drainTimeoutMs: number): Promise<void>;
}

/** The request line and headers Node's parser accepts; Kueuer's own limits (request-rules) answer first below it. */
const MAX_HEADER_SECTION_BYTES = 128 * 1024;
/** Header fields (lines) Node's parser accepts in one request; past it, it fails with the same code as for size. */
const MAX_HEADER_FIELDS = 1000;
/**
 * How often Node checks its connections against the headers timeout: the 408 comes at most this late
 * (Node's default of 30 s made a 60 s timeout fire at up to 90 s).
 */
const CONNECTIONS_CHECK_INTERVAL_MS = 1_000;

export async function buildResponder(settings: ResponderSettings, transport: Transport, metrics: ResponderMetrics, log: Logger): Promise<Responder> {
  const pending = new PendingRequests(settings.maxPending);
  /** Connections whose request body is being read: a close there is that request's client disconnect. */
  const readingBody = new WeakSet<object>();
  /** Set when the server starts closing: new requests get a 503 and the connection closes (as fastify's return503OnClosing did). */
  let closing = false;
  const app = Fastify({
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion -- it fixes Fastify's logger generic to FastifyBaseLogger, which the instance's declared type needs
    loggerInstance: log as FastifyBaseLogger,
    // Requests Node's parser refuses (smuggling forms, obs-fold, oversize or slow headers) get Kueuer's JSON
    // answer and a log line with a request id; never the raw bytes (they hold cookies and tokens).
    clientErrorHandler: (err, socket) => {
      if (err.code === 'ECONNRESET' || socket.destroyed) return;
      if (err.code === 'HPE_INVALID_EOF_STATE') {
        // The client closed in the middle of a request: a disconnect, not a malformed request. One
        // whose body was being read is counted and logged once, by its own handler (forward).
        if (!readingBody.has(socket)) {
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
            ? [431, 'headers_too_large', headerOverflowMessage((err as { bytesParsed?: number }).bytesParsed ?? 0)]
            : [400, 'malformed_request', `the request is not valid HTTP/1.1 (${err.code ?? 'parse error'}); nothing was queued`];
      log.info({ reqId: id, status, code, cause: err.code }, 'refused a malformed request');
      metrics.answered(status, 0);
      if (socket.writable) writeRawError(socket, status, errorBody(code, message, id), id);
      else socket.destroy();
    },
    // Every request is the app's, so the hot path is a plain node:http handler: fastify keeps the server's
    // life cycle (listen, close, clientError) but no request goes through its router, its request and
    // reply objects or a per-request child logger (measured: docs/benchmarks.md).
    serverFactory: () => {
      // Room for a 16 KiB target plus 48 KiB of headers; beyond it Node's parser answers 431 itself.
      // A missing Host gets Kueuer's 400 below.
      const server = http.createServer(
        {
          maxHeaderSize: MAX_HEADER_SECTION_BYTES,
          requireHostHeader: false,
          headersTimeout: settings.headersTimeoutMs,
          // No whole-request timeout (--body-timeout is ours), as fastify's servers.
          requestTimeout: 0,
          connectionsCheckingInterval: CONNECTIONS_CHECK_INTERVAL_MS,
        },
        (req, res) => handle(req, res),
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

  const onReply = (message: WireMessage): void => {
    let response: QueuedResponse;
    try {
      response = decodeResponse(message);
    } catch (err) {
      metrics.invalidReply();
      // A reply that names a client this replica holds answers it at once rather than at its deadline.
      const id = message.meta[META.id];
      const entry = id !== undefined && isRequestId(id) ? pending.take(id) : undefined;
      log.warn({ reqId: entry ? id : undefined, err: (err as Error).message }, 'dropped a malformed reply');
      entry?.onInvalidReply((err as Error).message);
      return;
    }
    if (response.queue !== settings.queue) {
      metrics.invalidReply();
      log.warn({ reqId: response.id, queue: response.queue }, 'dropped a reply from another queue');
      return;
    }
    const entry = pending.take(response.id);
    if (!entry) {
      metrics.lateReply();
      log.info({ reqId: response.id }, 'dropped a late reply: its client was already answered or gone');
      return;
    }
    entry.onReply(response);
  };
  const inbox: ReplyInbox = await transport.openReplyInbox(settings.queue, onReply);

  function handle(req: IncomingMessage, res: ServerResponse): void {
    if (closing) {
      res.writeHead(503, { 'Content-Type': 'application/json', 'Content-Length': '80', Connection: 'close' });
      res.end('{"error":"Service Unavailable","message":"Service Unavailable","statusCode":503}');
      return;
    }
    const id = newRequestId();
    forward(req, res, id).catch((err: unknown) => {
      log.error({ reqId: id, err }, 'the proxy failed on a request');
      if (!res.headersSent) res.destroy();
    });
  }
  // CONNECT asks for a tunnel, not a request for the app: Node hands it to 'connect' (without a
  // listener it would just close the socket).
  app.server.on('connect', (req: IncomingMessage, socket: Duplex) => {
    const id = newRequestId();
    writeRawError(socket, 501, errorBody('connect_not_supported', 'CONNECT (a tunnel) cannot be queued; send plain HTTP requests', id), id);
    metrics.answered(501, 0);
    log.info({ reqId: id, status: 501, method: 'CONNECT' }, 'refused a CONNECT request');
  });
  // Expect: 100-continue is settled here: a request Kueuer would refuse gets its answer instead
  // of an invitation to send the body.
  app.server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    const problem = expectedBodyProblem(req) ?? requestProblem(req, forwardedHeaders(req));
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

  function forwardedHeaders(req: IncomingMessage): HeaderPairs {
    return withClientAddress(forwardableHeaders(pairsFromRaw(req.rawHeaders)), req.socket.remoteAddress);
  }

  /** Over --max-body by its declared length: known before a byte of the body is read. */
  function expectedBodyProblem(req: IncomingMessage): RefusalProblem | null {
    const declared = req.headers['content-length'];
    if (declared !== undefined && Number(declared) > settings.maxBodyBytes) {
      return { status: 413, code: 'body_too_large', message: new BodyTooLargeError(settings.maxBodyBytes).message };
    }
    return null;
  }

  async function forward(req: IncomingMessage, res: ServerResponse, id: string): Promise<void> {
    let child: Logger | undefined;
    /** The request's logger, made on first use: most requests log nothing at the default level. */
    const reqLog = (): Logger => (child ??= log.child({ reqId: id }));
    const started = process.hrtime.bigint();
    let answered = false;
    const answer = (status: number, headers: HeaderPairs, body: Buffer, how: WriteOptions = {}): void => {
      if (answered) return;
      answered = true;
      writeResponse(res, id, status, headers, body, how);
      if (!res.writableFinished && !res.destroyed) {
        // A client that does not read its answer must not hold it (and its buffer) for ever.
        const timer = setTimeout(() => {
          metrics.sendTimeout();
          reqLog().warn({ timeoutMs: settings.sendTimeoutMs }, 'the client did not read its answer within --send-timeout; disconnected');
          res.destroy();
        }, settings.sendTimeoutMs);
        res.once('close', () => clearTimeout(timer));
      }
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      metrics.answered(status, seconds);
      metrics.pendingSet(pending.size);
      if (log.isLevelEnabled('info')) reqLog().info({ status, ms: Math.round(seconds * 1000) }, 'answered');
    };
    const fail = (status: number, error: ClientErrorCode, message: string, extra: HeaderPairs = [], how: WriteOptions = {}): void => {
      answer(status, [['content-type', 'application/json'], ...extra], errorBody(error, message, id), how);
    };
    /**
     * Answers before the body is read. The connection of a request whose body is still coming is
     * closed after a bounded lingering drain, so the client can read the answer (responder/linger.ts).
     */
    const refuseEarly = (problem: RefusalProblem): void => {
      reqLog().info({ code: problem.code, reason: problem.message }, 'refused a request Kueuer cannot queue');
      // A request without a body has nothing left unread: its connection stays open for the next one.
      const bodyPending = !req.complete && (req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0);
      if (bodyPending) lingerAfterAnswer(req);
      fail(problem.status, problem.code, problem.message, [], { closeConnection: bodyPending });
    };

    const headers = forwardedHeaders(req);
    const problem = requestProblem(req, headers) ?? expectedBodyProblem(req);
    if (problem) return refuseEarly(problem);

    let body: Buffer;
    readingBody.add(req.socket);
    try {
      body = await readBody(req, settings.maxBodyBytes, settings.bodyTimeoutMs);
    } catch (err) {
      if (err instanceof BodyTooLargeError) {
        reqLog().warn({ limit: settings.maxBodyBytes }, 'refused an oversize body');
        refuseEarly({ status: 413, code: 'body_too_large', message: err.message });
      } else if (err instanceof BodyTimeoutError) {
        reqLog().warn({ timeoutMs: settings.bodyTimeoutMs }, 'the client did not send its body within --body-timeout');
        refuseEarly({ status: 408, code: 'body_timeout', message: err.message });
      } else {
        answered = true;
        metrics.clientDisconnect();
        reqLog().info({ err: (err as Error).message }, 'client went away while sending its body');
      }
      return;
    } finally {
      readingBody.delete(req.socket);
    }

    // Trailer fields after a chunked body travel too (envelope v2), under the same rules as headers.
    const trailers = forwardableHeaders(pairsFromRaw(req.rawTrailers));
    const trailerProblem = trailers.length > 0 ? responseHeadersProblem(trailers) : null;
    if (trailerProblem) return fail(trailerProblem.status, trailerProblem.code, `trailer fields: ${trailerProblem.message}`);

    if (!transport.isReady()) {
      metrics.publishError();
      fail(503, 'broker_unavailable', 'the queue is unreachable; retry shortly', [['retry-after', '1']]);
      return;
    }
    if (pending.isFull()) {
      fail(503, 'too_many_pending', `this responder already holds ${settings.maxPending} requests`, [['retry-after', '1']]);
      return;
    }

    const deadline = Date.now() + settings.timeoutMs;
    const isHead = req.method === 'HEAD';
    pending.hold(
      id,
      settings.timeoutMs,
      (response) => answer(response.status, response.headers, response.body, { isHead, reason: response.reason, trailers: response.trailers }),
      () => fail(504, 'deadline_exceeded', `no answer within ${settings.timeoutMs} ms`),
      (reason) => fail(502, 'invalid_app_response', `the app's answer could not be carried back: ${reason}`),
    );
    metrics.pendingSet(pending.size);
    res.on('close', () => {
      if (answered) return;
      answered = true;
      if (pending.take(id)) {
        metrics.clientDisconnect();
        metrics.pendingSet(pending.size);
        // Where the backend can (memory), a request no consumer took yet leaves the queue: no app call, no backlog.
        const withdrawn = transport.withdrawRequest?.(settings.queue, id) ?? false;
        reqLog().info({ withdrawn }, 'client went away before its answer');
      }
    });

    try {
      await transport.publishRequest(
        settings.queue,
        encodeRequest({
          id,
          queue: settings.queue,
          replyTo: inbox.address,
          deadline,
          enqueuedAt: Date.now(),
          method: req.method ?? 'GET',
          path: req.url ?? '/',
          headers,
          body,
          ...(trailers.length > 0 ? { trailers } : {}),
        }),
        { timeoutMs: settings.publishTimeoutMs },
      );
    } catch (err) {
      if (!pending.take(id)) return; // answered or gone meanwhile
      metrics.publishError();
      reqLog().warn({ err: (err as Error).message, code: isKueuerError(err) ? err.code : undefined }, 'publish failed');
      if (isKueuerError(err, 'KUEUER_ERR_QUEUE_FULL')) fail(503, 'queue_full', err.message, [['retry-after', '1']]);
      else fail(503, 'broker_unavailable', 'the queue did not accept the request; retry shortly', [['retry-after', '1']]);
    }
  }

  return {
    app,
    pending,
    async drain(drainTimeoutMs) {
      const closing = app.close(); // stops accepting; held clients keep their connections
      const drained = await pending.drained(drainTimeoutMs);
      if (!drained) log.warn({ held: pending.size }, 'drain timeout: some clients are still waiting');
      await closing;
      await inbox.close();
    },
  };
}

/** Node's parser fails the same way past MAX_HEADER_SECTION_BYTES and past MAX_HEADER_FIELDS: tell which. */
function headerOverflowMessage(bytesParsed: number): string {
  return bytesParsed < MAX_HEADER_SECTION_BYTES
    ? `the request has more than ${MAX_HEADER_FIELDS} header fields`
    : `the request line and headers are over ${MAX_HEADER_SECTION_BYTES} bytes`;
}

type RefusalProblem = Pick<RequestProblem, 'message'> & { status: number; code: ClientErrorCode };

/**
 * Why a request cannot be queued, known from its request line and headers
 * alone: a protocol switch, or a target or headers the envelope cannot carry.
 */
function requestProblem(req: IncomingMessage, forwarded: HeaderPairs): RefusalProblem | null {
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
