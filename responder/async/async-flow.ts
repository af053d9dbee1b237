/**
 * Asynchronous requests on the responder (docs/async.md): the submit (202 and
 * a Location under the reserved status path) and the status resource (poll,
 * long-poll, cancel). The app's answer reaches the store through results.ts.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AsyncMode } from '../../shared/annotations.js';
import type { HeaderPairs } from '../../shared/http-headers.js';
import type { Answer } from '../answer.js';
import type { AsyncSubmit, FlowContext, ReadRequest } from '../request-flow.js';
import { newRequestAnswer, publishable, publishFailed, publishRequest } from '../request-flow.js';
import type { AsyncMetrics } from './metrics.js';
import {
  isAsyncRequest,
  isReservedTarget,
  parseStatusTarget,
  prefersRespondAsync,
  requestFingerprint,
  RETRY_AFTER_SECONDS,
  statusLocation,
  withoutRespondAsync,
} from './protocol.js';
import type { AsyncRecord, AsyncStore, CancelState, IdempotencyClaim } from './store.js';
import { callbackOfSubmit, type AsyncCallbacks } from './callback-submit.js';

export interface AsyncContext {
  mode: Exclude<AsyncMode, 'off'>;
  resultTtlMs: number;
  store: AsyncStore;
  metrics: AsyncMetrics;
  /** Where sidecars send the answers of asynchronous requests: one address every replica of the queue consumes. */
  resultsAddress: string;
  /** The Service's callbacks and the dispatcher that checks and sends them. */
  callbacks: AsyncCallbacks;
}

/** How long after a request's deadline a poll still waits for its answer (a reply in flight). */
const DEADLINE_GRACE_MS = 2_000;
/** How long a DELETE waits for a sidecar to report the request it cancelled (skipped, or running). */
export const CANCEL_SETTLE_MS = 1_000;
const CANCEL_CHECK_MS = 50;

/** What a client is told of a cancelled request, per state (docs/async.md, "Cancel"). */
const CANCEL_MESSAGES: Record<CancelState, string> = {
  queued: 'cancelled while queued: no sidecar has taken it, and the one that does acks it without calling the app',
  'not-run': 'cancelled before the app started it: a sidecar acked it without calling the app',
  running: 'the app had already started it when it was cancelled: it may still be running, and its answer will be discarded',
  ran: 'the app had already started it when it was cancelled: it ran, and its answer was discarded',
};

const JSON_TYPE: [string, string] = ['content-type', 'application/json'];
const json = (o: object): Buffer => Buffer.from(JSON.stringify(o));

/** A store that cannot be reached: 503, nothing accepted or changed. */
function storeFailed(answer: Answer, err: unknown): void {
  answer.log().warn({ err: (err as Error).message }, 'the asynchronous result store failed');
  answer.fail(503, 'async_store_unavailable', 'the result store is unreachable; retry shortly', [['retry-after', '1']]);
}

/** 202 Accepted, pointing at the status resource (RFC 7240 §4.1, RFC 9110 §15.3.3). */
function accepted(answer: Answer, req: IncomingMessage, id: string): void {
  const headers: HeaderPairs = [JSON_TYPE, ['location', statusLocation(id)], ['retry-after', String(RETRY_AFTER_SECONDS)]];
  if (prefersRespondAsync(req.headers.prefer)) headers.push(['preference-applied', 'respond-async']);
  answer.send(202, headers, json({ id, status: 'accepted', location: statusLocation(id) }));
}

/** The flow's asynchronous path for this Service. */
export function asyncSubmit(ctx: FlowContext, a: AsyncContext): AsyncSubmit {
  return {
    wants: (req) => isAsyncRequest(a.mode, req.headers.prefer),
    submit: (req, answer, request) => submitAsync(ctx, a, req, answer, request),
    reserves: isReservedTarget,
    status: (req, res, id) => handleStatus(ctx, a, req, res, id),
  };
}

/** Accepts a read request: records it, publishes it with the shared results address, answers 202. */
export async function submitAsync(ctx: FlowContext, a: AsyncContext, req: IncomingMessage, answer: Answer, request: ReadRequest): Promise<void> {
  if (!publishable(ctx, answer)) return;
  // Its place is taken now, before the waits below, so a burst cannot pass the check together.
  const release = ctx.pending.takePlace();
  try {
    await acceptAndPublish(ctx, a, req, answer, request);
  } finally {
    release();
  }
}

/** submitAsync once it holds a place: the callback, the store's record, the publish, the 202. */
async function acceptAndPublish(ctx: FlowContext, a: AsyncContext, req: IncomingMessage, answer: Answer, request: ReadRequest): Promise<void> {
  const { settings } = ctx;
  const id = answer.id;
  const callback = await callbackOfSubmit(a.callbacks, req, answer, request);
  if (!callback.ok) return;
  const key = req.headers['idempotency-key'];
  const claim: IdempotencyClaim | undefined =
    typeof key === 'string' && key.length > 0
      ? { key: createHash('sha256').update(key).digest('hex'), fingerprint: requestFingerprint(request.method, request.path, request.body, callback.url) }
      : undefined;
  let outcome;
  try {
    outcome = await a.store.accept(settings.queue, id, a.resultTtlMs, claim, callback.url, Date.now() + settings.timeoutMs + DEADLINE_GRACE_MS);
  } catch (err) {
    return storeFailed(answer, err);
  }
  if (!outcome.accepted) {
    if (outcome.fingerprint !== claim?.fingerprint) {
      return answer.fail(
        422,
        'idempotency_key_reused',
        `Idempotency-Key was first used for another request (${outcome.id}) with a different method, target, callback URL or body`,
      );
    }
    answer.log().info({ firstId: outcome.id }, 'a repeat of an asynchronous request (same Idempotency-Key): not run again');
    return accepted(answer, req, outcome.id);
  }
  try {
    // The body stays with the broker client until the publish ends: the place is kept meanwhile, as a held client's.
    await publishRequest(ctx, id, a.resultsAddress, { ...callback.request, headers: withoutRespondAsync(callback.request.headers) });
  } catch (err) {
    await a.store.remove(settings.queue, id).catch(() => undefined);
    return publishFailed(ctx, answer, err);
  }
  a.metrics.accepted();
  accepted(answer, req, id);
}

/** A request for the status resource: GET/HEAD polls (optionally long), DELETE cancels or removes. */
export function handleStatus(ctx: FlowContext, a: AsyncContext, req: IncomingMessage, res: ServerResponse, requestId: string): void {
  const answer = newRequestAnswer(ctx, res, requestId);
  status(ctx, a, req, res, answer).catch((err: unknown) => storeFailed(answer, err));
}

async function status(ctx: FlowContext, a: AsyncContext, req: IncomingMessage, res: ServerResponse, answer: Answer): Promise<void> {
  const queue = ctx.settings.queue;
  const method = req.method ?? 'GET';
  if (method !== 'GET' && method !== 'HEAD' && method !== 'DELETE') {
    return answer.fail(405, 'async_method_not_allowed', `${method.slice(0, 32)} is not allowed on an asynchronous request; use GET or DELETE`, [
      ['allow', 'GET, HEAD, DELETE'],
    ]);
  }
  const target = parseStatusTarget(req.url ?? '');
  if (!target.ok && target.notFound) return answer.fail(404, 'async_request_not_found', target.message);
  if (!target.ok) return answer.fail(400, 'async_invalid_wait', target.message);
  const { id, waitMs } = target;
  const notFound = (): void =>
    answer.fail(404, 'async_request_not_found', `no asynchronous request ${id} here: unknown, expired, removed, or another Service's`);
  let record = await a.store.get(queue, id);
  if (!record) return notFound();
  if (method === 'DELETE') return cancel(ctx, a, answer, record, notFound);
  if (!record.result && !record.cancelled && waitMs > 0) {
    // A long poll ends when the result arrives, at ?wait=, or when the client leaves.
    const left = new Promise<void>((r) => res.once('close', r));
    const untilDeadline = record.acceptedAt + ctx.settings.timeoutMs + DEADLINE_GRACE_MS - Date.now();
    await Promise.race([a.store.waitFor(queue, id, Math.max(0, Math.min(waitMs, untilDeadline + 10))), left]);
    if (res.destroyed) return;
    record = await a.store.get(queue, id);
    if (!record) return notFound();
  }
  if (record.cancelled) {
    a.metrics.polled('cancelled');
    const { app } = record.cancelled;
    const body = json({ error: 'async_request_cancelled', message: CANCEL_MESSAGES[app], requestId: id, app });
    return answer.send(410, [JSON_TYPE], body, { isHead: method === 'HEAD' });
  }
  const r = record.result;
  if (!r && Date.now() > record.acceptedAt + ctx.settings.timeoutMs + DEADLINE_GRACE_MS) {
    // As the synchronous path at the deadline: the sidecar skips a request whose deadline passed, so no answer comes.
    a.metrics.polled('expired');
    return answer.fail(504, 'deadline_exceeded', `no answer within ${ctx.settings.timeoutMs} ms of the request's acceptance`);
  }
  a.metrics.polled(r ? 'done' : 'pending');
  if (!r) {
    const headers: HeaderPairs = [JSON_TYPE, ['location', statusLocation(id)], ['retry-after', String(RETRY_AFTER_SECONDS)]];
    return answer.send(202, headers, json({ id, status: 'pending', location: statusLocation(id) }), { isHead: method === 'HEAD' });
  }
  // The app's answer as the synchronous path writes it, with the request's own id.
  newRequestAnswer(ctx, res, id).send(r.status, r.headers, r.body, { isHead: method === 'HEAD', reason: r.reason, trailers: r.trailers });
  answer.abandon();
}

/**
 * DELETE: removes a stored result (or a cancel that is settled); cancels a request without one.
 * The embedded broker takes a request no consumer took out of its queue; RabbitMQ and Kafka cannot,
 * so the cancel is recorded and sent to every sidecar of the queue (cancelRequest), and the answer
 * says what a sidecar reported within CANCEL_SETTLE_MS: skipped, running, or none yet (still
 * queued). Where neither can (a request the embedded broker already handed out, or a transport
 * without cancelRequest): 409.
 */
async function cancel(ctx: FlowContext, a: AsyncContext, answer: Answer, record: AsyncRecord, notFound: () => void): Promise<void> {
  const queue = ctx.settings.queue;
  const { id } = record;
  const deadline = record.acceptedAt + ctx.settings.timeoutMs;
  const settled = record.cancelled && (record.cancelled.app === 'not-run' || record.cancelled.app === 'ran' || Date.now() > deadline + DEADLINE_GRACE_MS);
  const remove = async (): Promise<void> => {
    // Another DELETE (here or on another replica) removed it meanwhile: only one of them deleted it.
    if (!(await a.store.remove(queue, id))) return notFound();
    answer.send(200, [JSON_TYPE], json({ id, status: 'deleted' }));
  };
  if (record.result || settled) return remove();
  const cancelled = (app: CancelState): void => answer.send(200, [JSON_TYPE], json({ id, status: 'cancelled', app, message: CANCEL_MESSAGES[app] }));
  if (!record.cancelled && ctx.transport.withdrawRequest?.(queue, id) === true) {
    await a.store.cancel(queue, id);
    await a.store.noteCancel(queue, id, 'not-run');
    a.metrics.cancelled();
    return cancelled('not-run');
  }
  if (!ctx.transport.cancelRequest) {
    return answer.fail(409, 'async_already_started', `request ${id} was already handed to the app; poll it for its result, or DELETE it once done`);
  }
  if (!ctx.transport.isReady()) {
    return answer.fail(503, 'broker_unavailable', 'the queue is unreachable, so the cancel cannot reach the sidecars; nothing changed, retry shortly', [
      ['retry-after', '1'],
    ]);
  }
  const outcome = await a.store.cancel(queue, id);
  if (outcome === 'gone') return notFound();
  if (outcome === 'done') return remove(); // answered meanwhile: the result goes, as for any DELETE of one
  if (outcome === 'cancelled') a.metrics.cancelled();
  // A repeated DELETE sends it again (the first may not have reached the broker), at most once per
  // RESEND_EVERY_MS per id and replica: repeats cannot flood the stream and push older cancels out.
  const due = resends.due(`${queue}\n${id}`);
  if (outcome === 'already' && !due) return cancelled(record.cancelled?.app ?? 'queued');
  try {
    await ctx.transport.cancelRequest(queue, id, deadline, { timeoutMs: ctx.settings.publishTimeoutMs });
  } catch (err) {
    answer.log().warn({ err: (err as Error).message }, 'could not send a cancel to the sidecars');
    return answer.fail(
      503,
      'broker_unavailable',
      "the cancel is recorded (the app's answer will be discarded) but the sidecars could not be told; DELETE again shortly",
      [['retry-after', '1']],
    );
  }
  answer.log().info({ outcome }, 'cancelled an asynchronous request');
  return cancelled(await reported(a, queue, id));
}

/** Ids whose cancel a repeated DELETE sent again lately, bounded (the oldest forgotten first). */
const RESEND_EVERY_MS = 5_000;
const RESENDS_KEPT = 10_000;
const resends = {
  sent: new Map<string, number>(),
  due(key: string): boolean {
    const now = Date.now();
    const last = this.sent.get(key);
    if (last !== undefined && now - last < RESEND_EVERY_MS) return false;
    this.sent.delete(key);
    if (this.sent.size >= RESENDS_KEPT) this.sent.delete(this.sent.keys().next().value!);
    this.sent.set(key, now);
    return true;
  },
};

/** The cancelled request's state once a sidecar reported on it, or after CANCEL_SETTLE_MS. */
async function reported(a: AsyncContext, queue: string, id: string): Promise<CancelState> {
  // A bounded poll of the store (a sidecar's report arrives through the results address), not a retry.
  const until = Date.now() + CANCEL_SETTLE_MS;
  const state = async (): Promise<CancelState> => (await a.store.get(queue, id))?.cancelled?.app ?? 'queued';
  let app = await state();
  while (app === 'queued' && Date.now() < until) {
    await new Promise((r) => setTimeout(r, CANCEL_CHECK_MS));
    app = await state();
  }
  return app;
}
