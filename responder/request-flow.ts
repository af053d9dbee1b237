/**
 * The per-request flow of the responder: refuse what cannot be queued, read
 * the body, hold the client, publish the request. The answer (the app's
 * reply, or a catalogue error) is written by the request's Answer.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { encodeRequest } from '../shared/envelope.js';
import type { ReadRequest } from './read-request.js';
import { isKueuerError } from '../shared/errors.js';
import { forwardableHeaders, pairsFromRaw, type HeaderPairs } from '../shared/http-headers.js';
import { responseHeadersProblem } from '../shared/request-rules.js';
import type { LostInbox, Transport } from '../shared/transport/transport.js';
import { requestNamesCallback } from './async/callback-submit.js';
import { CALLBACK_URL_HEADER } from './callbacks/index.js';
import { newAnswer, type Answer } from './answer.js';
import type { ResponderSettings } from './config.js';
import { lingerAfterAnswer } from './linger.js';
import type { ResponderMetrics } from './metrics.js';
import type { PendingRequests } from './pending-requests.js';
import { BodyTimeoutError, BodyTooLargeError, readBody } from './read-body.js';
import { expectedBodyProblem, forwardedHeaders, requestProblem, type RefusalProblem } from './refusals.js';

export interface FlowContext {
  settings: ResponderSettings;
  transport: Transport;
  metrics: ResponderMetrics;
  log: Logger;
  pending: PendingRequests;
  /** This replica's reply inbox address. */
  replyTo: () => string;
  /** Connections whose request body is being read (the HTTP server's client-error handler reads it). */
  readingBody: WeakSet<object>;
  /** Set when the Service answers asynchronously (responder/async/). */
  async?: AsyncSubmit;
}

/** The asynchronous path, taken after the request is read. */
export interface AsyncSubmit {
  /** Whether this request is answered 202 and run in the background. */
  wants(req: IncomingMessage): boolean;
  submit(req: IncomingMessage, answer: Answer, request: ReadRequest): Promise<void>;
  /** Whether a target is Kueuer's status path in any of its forms (protocol.ts isReservedTarget): never the app's. */
  reserves(target: string): boolean;
  /** Answers a request for the status path (poll, long-poll, cancel). */
  status(req: IncomingMessage, res: ServerResponse, id: string): void;
}

/** A request read whole and fit to queue: everything its envelope needs but the routing. */
export type { ReadRequest };

export function newRequestAnswer(ctx: FlowContext, res: ServerResponse, id: string): Answer {
  return newAnswer(res, id, { sendTimeoutMs: ctx.settings.sendTimeoutMs, metrics: ctx.metrics, log: ctx.log, heldCount: () => ctx.pending.size });
}

/** Runs one request through the flow; a failure of the flow itself is logged and cuts the connection. */
export function handleRequest(ctx: FlowContext, req: IncomingMessage, res: ServerResponse, id: string): void {
  if (ctx.async?.reserves(req.url ?? '/')) return ctx.async.status(req, res, id);
  const answer = newRequestAnswer(ctx, res, id);
  forward(ctx, req, res, answer).catch((err: unknown) => {
    ctx.log.error({ reqId: id, err }, 'the proxy failed on a request');
    if (!res.headersSent) res.destroy();
  });
}

async function forward(ctx: FlowContext, req: IncomingMessage, res: ServerResponse, answer: Answer): Promise<void> {
  const request = await readRequest(ctx, req, answer);
  if (!request) return;
  if (ctx.async?.wants(req)) return ctx.async.submit(req, answer, request);
  if (requestNamesCallback(req)) {
    const how = ctx.async ? 'send it with Prefer: respond-async' : "the Service's kueuer.io/async is off";
    return answer.fail(400, 'callback_requires_async', `${CALLBACK_URL_HEADER} needs a request answered asynchronously: ${how}; nothing was queued`);
  }
  if (!publishable(ctx, answer)) return;
  await holdAndPublish(ctx, req, res, answer, request);
}

/**
 * Answers before the body is read. The connection of a request whose body is still coming is
 * closed after a bounded lingering drain, so the client can read the answer (responder/linger.ts).
 */
function refuseEarly(req: IncomingMessage, answer: Answer, problem: RefusalProblem): void {
  answer.log().info({ code: problem.code, reason: problem.message }, 'refused a request Kueuer cannot queue');
  // A request without a body has nothing left unread: its connection stays open for the next one.
  const bodyPending = !req.complete && (req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0);
  if (bodyPending) lingerAfterAnswer(req);
  answer.fail(problem.status, problem.code, problem.message, [], { closeConnection: bodyPending });
}

/** Refuse, then read: the request as it will be queued, or null when it was answered or its client left. */
export async function readRequest(ctx: FlowContext, req: IncomingMessage, answer: Answer): Promise<ReadRequest | null> {
  const { settings, metrics } = ctx;
  const headers = forwardedHeaders(req, settings.trustedProxies);
  const problem = requestProblem(req, headers) ?? expectedBodyProblem(req, settings.maxBodyBytes);
  if (problem) {
    refuseEarly(req, answer, problem);
    return null;
  }
  let body: Buffer;
  ctx.readingBody.add(req.socket);
  try {
    body = await readBody(req, settings.maxBodyBytes, settings.bodyTimeoutMs);
  } catch (err) {
    if (err instanceof BodyTooLargeError) {
      answer.log().warn({ limit: settings.maxBodyBytes }, 'refused an oversize body');
      refuseEarly(req, answer, { status: 413, code: 'body_too_large', message: err.message });
    } else if (err instanceof BodyTimeoutError) {
      answer.log().warn({ timeoutMs: settings.bodyTimeoutMs }, 'the client did not send its body within --body-timeout');
      refuseEarly(req, answer, { status: 408, code: 'body_timeout', message: err.message });
    } else {
      answer.abandon();
      metrics.clientDisconnect();
      answer.log().info({ err: (err as Error).message }, 'client went away while sending its body');
    }
    return null;
  } finally {
    ctx.readingBody.delete(req.socket);
  }
  // Trailer fields after a chunked body travel too (envelope v2), under the same rules as headers.
  const trailers = forwardableHeaders(pairsFromRaw(req.rawTrailers));
  const trailerProblem = trailers.length > 0 ? responseHeadersProblem(trailers) : null;
  if (trailerProblem) {
    answer.fail(trailerProblem.status, trailerProblem.code, `trailer fields: ${trailerProblem.message}`);
    return null;
  }
  return { method: req.method ?? 'GET', path: req.url ?? '/', headers, body, ...(trailers.length > 0 ? { trailers } : {}) };
}

/** Whether the broker can take a request now and this replica has a place for one more client or publish; else answered 503. */
export function publishable(ctx: FlowContext, answer: Answer): boolean {
  if (!ctx.transport.isReady()) {
    ctx.metrics.publishError();
    answer.fail(503, 'broker_unavailable', 'the queue is unreachable; retry shortly', [['retry-after', '1']]);
    return false;
  }
  if (ctx.pending.isFull()) {
    answer.fail(503, 'too_many_pending', `this responder already holds ${ctx.settings.maxPending} requests`, [['retry-after', '1']]);
    return false;
  }
  return true;
}

/** Holds the client until its reply, its deadline or its departure, and publishes the request. */
async function holdAndPublish(ctx: FlowContext, req: IncomingMessage, res: ServerResponse, answer: Answer, request: ReadRequest): Promise<void> {
  const { settings, metrics, pending } = ctx;
  const id = answer.id;
  const isHead = request.method === 'HEAD';
  const replyTo = ctx.replyTo();
  pending.hold(
    id,
    settings.timeoutMs,
    (response) => answer.send(response.status, response.headers, response.body, { isHead, reason: response.reason, trailers: response.trailers }),
    () => answer.fail(504, 'deadline_exceeded', `no answer within ${settings.timeoutMs} ms`),
    (reason) => answer.fail(502, 'invalid_app_response', `the app's answer could not be carried back: ${reason}`),
    { replyTo, onInboxLost: (cause) => answer.fail(504, 'reply_inbox_lost', inboxLostMessage(cause)) },
  );
  metrics.pendingSet(pending.size);
  let publishing: Promise<void> | undefined;
  res.on('close', () => {
    if (!answer.abandon()) return;
    if (pending.take(id)) {
      metrics.clientDisconnect();
      metrics.pendingSet(pending.size);
      // Its body stays with the broker client until the publish ends: so does its place.
      if (publishing) pending.keepPlaceUntil(publishing);
      // Where the backend can (memory), a request no consumer took yet leaves the queue: no app call, no backlog.
      const withdrawn = ctx.transport.withdrawRequest?.(settings.queue, id) ?? false;
      answer.log().info({ withdrawn }, 'client went away before its answer');
    }
  });
  try {
    publishing = publishRequest(ctx, id, replyTo, request);
    await publishing;
    publishing = undefined;
  } catch (err) {
    publishing = undefined;
    if (!pending.take(id)) return; // answered or gone meanwhile
    publishFailed(ctx, answer, err);
  }
}

/** What a client whose reply inbox was lost reads: the cause, that the request may have run, and what to do. */
export function inboxLostMessage(cause: string): string {
  return (
    `the reply inbox this request's answer was to reach is gone (${cause}), so its answer cannot come back; ` +
    'the request may have run, or may still run once. Retry if it is safe to run it again; operators: see reply_inbox_lost in docs/errors.md'
  );
}

/** Request ids a lost inbox's log line names at most (the count is always there): 1,000 ids are ~35 KB. */
const LOST_IDS_LOGGED = 1000;

/**
 * The transport lost this replica's reply inbox (LostInbox) and consumes a fresh one: every client
 * held for the lost address is answered reply_inbox_lost now instead of waiting for its deadline.
 */
export function inboxLost(ctx: FlowContext, lost: LostInbox): void {
  const held = ctx.pending.takeRoutedTo(lost.address);
  ctx.log.error(
    { inbox: lost.address, cause: lost.cause, held: held.length, reqIds: held.slice(0, LOST_IDS_LOGGED).map((h) => h.id), fresh: ctx.replyTo() },
    'reply inbox lost: its held clients are answered reply_inbox_lost',
  );
  for (const { entry } of held) entry.onInboxLost(lost.cause);
  ctx.metrics.pendingSet(ctx.pending.size);
}

/** Publishes a read request with its routing: id, reply destination, deadline. */
export async function publishRequest(ctx: FlowContext, id: string, replyTo: string, request: ReadRequest): Promise<void> {
  const now = Date.now();
  const message = encodeRequest({ id, queue: ctx.settings.queue, replyTo, deadline: now + ctx.settings.timeoutMs, enqueuedAt: now, ...request });
  // Never past the request's deadline: its client has had its 504 by then, and the body would outlive its place.
  await ctx.transport.publishRequest(ctx.settings.queue, message, { timeoutMs: Math.min(ctx.settings.publishTimeoutMs, ctx.settings.timeoutMs) });
}

/** The broker refused or did not confirm: 503 with Retry-After; nothing was queued. */
export function publishFailed(ctx: FlowContext, answer: Answer, err: unknown, extra: HeaderPairs = []): void {
  ctx.metrics.publishError();
  answer.log().warn({ err: (err as Error).message, code: isKueuerError(err) ? err.code : undefined }, 'publish failed');
  if (isKueuerError(err, 'KUEUER_ERR_QUEUE_FULL')) answer.fail(503, 'queue_full', err.message, [['retry-after', '1'], ...extra]);
  else answer.fail(503, 'broker_unavailable', 'the queue did not accept the request; retry shortly', [['retry-after', '1'], ...extra]);
}
