/**
 * The responder: Kueuer's front door. Every method and path on the listen
 * port is the app's. A request is published to the queue, its client is held,
 * and the app's exact status, headers and body are written back when the
 * reply reaches this replica's private inbox.
 */
import http from 'node:http';
import type { ServerResponse } from 'node:http';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { decodeResponse, encodeRequest, type QueuedResponse, type WireMessage } from '../shared/envelope.js';
import { isKueuerError } from '../shared/errors.js';
import {
  flattenPairs,
  forwardableHeaders,
  headerValue,
  pairsFromRaw,
  REQUEST_ID_HEADER,
  withoutHeader,
  type HeaderPairs,
} from '../shared/http-headers.js';
import { newRequestId } from '../shared/request-id.js';
import type { ReplyInbox, Transport } from '../shared/transport/transport.js';
import type { ResponderSettings } from './config.js';
import type { ResponderMetrics } from './metrics.js';
import { PendingRequests } from './pending-requests.js';
import { BodyTooLargeError, readBody } from './read-body.js';

export interface Responder {
  app: FastifyInstance;
  pending: PendingRequests;
  /** Stops accepting clients, then waits up to drainTimeoutMs for held ones. */
  drain(drainTimeoutMs: number): Promise<void>;
}

/** Every method Node's parser knows except CONNECT, which is not a request for the app. */
const PROXIED_METHODS = http.METHODS.filter((m) => m !== 'CONNECT');

export async function buildResponder(
  settings: ResponderSettings,
  transport: Transport,
  metrics: ResponderMetrics,
  log: Logger,
): Promise<Responder> {
  const pending = new PendingRequests(settings.maxPending);
  const app = Fastify({
    loggerInstance: log as FastifyBaseLogger,
    genReqId: () => newRequestId(),
    // One line per answered request is logged by the proxy itself, with reqId.
    logController: new LogController({ requestIdLogLabel: 'reqId', disableRequestLogging: true }),
    exposeHeadRoutes: false,
    return503OnClosing: true,
  });
  // The responder reads bodies itself, raw and bounded, for every method, so
  // fastify must not parse them (it would refuse unknown or missing media types).
  for (const method of PROXIED_METHODS) app.addHttpMethod(method, { hasBody: false, overrideExisting: true });

  const onReply = (message: WireMessage): void => {
    let response: QueuedResponse;
    try {
      response = decodeResponse(message);
    } catch (err) {
      metrics.invalidReply();
      log.warn({ err: (err as Error).message }, 'dropped a malformed reply');
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

  app.route({
    method: PROXIED_METHODS,
    url: '*',
    handler: async (request, reply) => {
      reply.hijack();
      await forward(request, reply.raw);
    },
  });

  async function forward(request: FastifyRequest, res: ServerResponse): Promise<void> {
    const id = request.id;
    const reqLog = request.log;
    const started = process.hrtime.bigint();
    let answered = false;
    const answer = (status: number, headers: HeaderPairs, body: Buffer, how: WriteOptions = {}): void => {
      if (answered) return;
      answered = true;
      writeResponse(res, id, status, headers, body, how);
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      metrics.answered(status, seconds);
      metrics.pendingSet(pending.size);
      reqLog.info({ status, ms: Math.round(seconds * 1000) }, 'answered');
    };
    const fail = (status: number, error: string, message: string, extra: HeaderPairs = [], how: WriteOptions = {}): void => {
      const json = Buffer.from(JSON.stringify({ error, message, requestId: id }));
      answer(status, [['content-type', 'application/json'], ...extra], json, how);
    };

    let body: Buffer;
    try {
      body = await readBody(request.raw, settings.maxBodyBytes);
    } catch (err) {
      if (err instanceof BodyTooLargeError) {
        reqLog.warn({ limit: settings.maxBodyBytes }, 'refused an oversize body');
        // The rest of the upload is not read: close the connection after answering.
        fail(413, 'body_too_large', err.message, [], { closeConnection: true });
        res.once('finish', () => request.raw.destroy());
      } else {
        reqLog.warn({ err: (err as Error).message }, 'client aborted while sending the body');
        answered = true;
      }
      return;
    }

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
    const isHead = request.method === 'HEAD';
    pending.hold(
      id,
      settings.timeoutMs,
      (response) => answer(response.status, response.headers, response.body, { isHead }),
      () => fail(504, 'deadline_exceeded', `no answer within ${settings.timeoutMs} ms`),
    );
    metrics.pendingSet(pending.size);
    res.on('close', () => {
      if (answered) return;
      answered = true;
      if (pending.take(id)) {
        metrics.clientDisconnect();
        metrics.pendingSet(pending.size);
        reqLog.info('client went away before its answer');
      }
    });

    const headers = forwardableHeaders(pairsFromRaw(request.raw.rawHeaders));
    appendForwardedFor(headers, request.raw.socket.remoteAddress);
    try {
      await transport.publishRequest(
        settings.queue,
        encodeRequest({
          id,
          queue: settings.queue,
          replyTo: inbox.address,
          deadline,
          enqueuedAt: Date.now(),
          method: request.method,
          path: request.raw.url ?? '/',
          headers,
          body,
        }),
        { timeoutMs: settings.publishTimeoutMs },
      );
    } catch (err) {
      if (!pending.take(id)) return; // answered or gone meanwhile
      metrics.publishError();
      reqLog.warn({ err: (err as Error).message, code: isKueuerError(err) ? err.code : undefined }, 'publish failed');
      fail(503, 'broker_unavailable', 'the queue did not accept the request; retry shortly', [['retry-after', '1']]);
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

function appendForwardedFor(headers: HeaderPairs, remote: string | undefined): void {
  if (!remote) return;
  const i = headers.findIndex(([n]) => n.toLowerCase() === 'x-forwarded-for');
  if (i >= 0) headers[i] = [headers[i]![0], `${headers[i]![1]}, ${remote}`];
  else headers.push(['x-forwarded-for', remote]);
}

/**
 * Writes the app's response as it was: status, header names and repeated
 * headers in order, and the body. Content-Length is recomputed from the body,
 * except for HEAD and 304, whose Content-Length describes a body not sent.
 */
interface WriteOptions {
  isHead?: boolean;
  closeConnection?: boolean;
}

function writeResponse(res: ServerResponse, id: string, status: number, headers: HeaderPairs, body: Buffer, how: WriteOptions): void {
  if (res.destroyed || res.headersSent) return;
  const isHead = how.isHead === true;
  const out = withoutHeader(forwardableHeaders(headers), 'content-length');
  const bodyless = isHead || status === 204 || status === 304;
  if (isHead || status === 304) {
    const declared = headerValue(headers, 'content-length');
    if (declared !== undefined) out.push(['content-length', declared]);
  } else if (status !== 204) {
    out.push(['content-length', String(body.length)]);
  }
  if (how.closeConnection) out.push(['connection', 'close']);
  out.push([REQUEST_ID_HEADER, id]);
  res.writeHead(status, flattenPairs(out));
  res.end(bodyless ? undefined : body);
}
