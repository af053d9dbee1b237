/**
 * The responder: Kueuer's front door. Every method and path on the listen
 * port is the app's. A request is published to the queue, its client is held,
 * and the app's exact status, headers and body are written back when the
 * reply reaches this replica's private inbox.
 *
 * Three parts: the HTTP server (http-server.ts), the per-request flow
 * (request-flow.ts) and the response writer (answer.ts, write-response.ts);
 * this file joins them to the reply inbox and drains them.
 */
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { decodeResponse, META, type QueuedResponse, type WireMessage } from '../shared/envelope.js';
import { isRequestId } from '../shared/request-id.js';
import type { ReplyInbox, Transport } from '../shared/transport/transport.js';
import type { ResponderSettings } from './config.js';
import { createHttpServer } from './http-server.js';
import type { ResponderMetrics } from './metrics.js';
import { PendingRequests } from './pending-requests.js';
import { handleRequest, type FlowContext } from './request-flow.js';

export interface Responder {
  app: FastifyInstance;
  pending: PendingRequests;
  /** Stops accepting clients, then waits up to drainTimeoutMs for held ones. */
  drain(drainTimeoutMs: number): Promise<void>;
}

export async function buildResponder(settings: ResponderSettings, transport: Transport, metrics: ResponderMetrics, log: Logger): Promise<Responder> {
  const pending = new PendingRequests(settings.maxPending);
  const inbox: ReplyInbox = await transport.openReplyInbox(settings.queue, (message) => onReply(message, settings, pending, metrics, log));
  const flow: FlowContext = { settings, transport, metrics, log, pending, replyTo: () => inbox.address, readingBody: new WeakSet() };
  const app = createHttpServer({ settings, metrics, log, readingBody: flow.readingBody, handle: (req, res, id) => handleRequest(flow, req, res, id) });
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

/** A reply on this replica's inbox: answers the client it names, if this replica still holds it. */
function onReply(message: WireMessage, settings: ResponderSettings, pending: PendingRequests, metrics: ResponderMetrics, log: Logger): void {
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
}
