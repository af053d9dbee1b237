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
import { newRequestAnswer, publishFailed, publishRequest } from '../request-flow.js';
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
import type { AsyncStore, IdempotencyClaim } from './store.js';
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
  const { settings } = ctx;
  const id = answer.id;
  if (!ctx.transport.isReady()) {
    ctx.metrics.publishError();
    return answer.fail(503, 'broker_unavailable', 'the queue is unreachable; retry shortly', [['retry-after', '1']]);
  }
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
  if (method === 'DELETE') return cancel(ctx, a, answer, id, record.result !== undefined, notFound);
  if (!record.result && waitMs > 0) {
    // A long poll ends when the result arrives, at ?wait=, or when the client leaves.
    const left = new Promise<void>((r) => res.once('close', r));
    const untilDeadline = record.acceptedAt + ctx.settings.timeoutMs + DEADLINE_GRACE_MS - Date.now();
    await Promise.race([a.store.waitFor(queue, id, Math.max(0, Math.min(waitMs, untilDeadline + 10))), left]);
    if (res.destroyed) return;
    record = await a.store.get(queue, id);
    if (!record) return notFound();
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

/** DELETE: removes a stored result, or cancels a request no consumer took yet; one already handed out is said so (409). */
async function cancel(ctx: FlowContext, a: AsyncContext, answer: Answer, id: string, done: boolean, notFound: () => void): Promise<void> {
  const queue = ctx.settings.queue;
  if (done) {
    // Another DELETE (here or on another replica) removed it meanwhile: only one of them deleted it.
    if (!(await a.store.remove(queue, id))) return notFound();
    return answer.send(200, [JSON_TYPE], json({ id, status: 'deleted' }));
  }
  if (ctx.transport.withdrawRequest?.(queue, id) === true) {
    await a.store.remove(queue, id);
    a.metrics.cancelled();
    return answer.send(200, [JSON_TYPE], json({ id, status: 'cancelled' }));
  }
  answer.fail(
    409,
    'async_already_started',
    `request ${id} was already handed to the app (or, on RabbitMQ and Kafka, cannot be taken back from the queue); poll it for its result, or DELETE it once done`,
  );
}
