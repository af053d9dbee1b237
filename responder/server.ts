/**
 * The responder: Kueuer's front door. Every method and path on the listen
 * port is the app's. A request is published to the queue, its client is held,
 * and the app's exact status, headers and body are written back when the
 * reply reaches this replica's private inbox. With kueuer.io/async, requests
 * may instead be answered 202 and polled (responder/async/, docs/async.md).
 *
 * Three parts: the HTTP server (http-server.ts), the per-request flow
 * (request-flow.ts) and the response writer (answer.ts, write-response.ts);
 * this file joins them to the reply inbox and drains them.
 */
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { Registry } from 'prom-client';
import { decodeResponse, META, type QueuedResponse, type WireMessage } from '../shared/envelope.js';
import { isRequestId } from '../shared/request-id.js';
import type { Consumer, ReplyInbox, Transport } from '../shared/transport/transport.js';
import { asyncSubmit, handleStatus, type AsyncContext } from './async/async-flow.js';
import { asyncMetrics } from './async/metrics.js';
import type { CallbackDispatcher } from './callbacks/index.js';
import { RESERVED_PREFIX } from './async/protocol.js';
import { asyncResultsAddress, consumeResults, type OnResultStored } from './async/results.js';
import { MemoryAsyncStore, type AsyncStore } from './async/store.js';
import { ASYNC_DEFAULTS, type ResponderSettings, type RouteCallbacks } from './config.js';
import { createHttpServer } from './http-server.js';
import type { ResponderMetrics } from './metrics.js';
import { PendingRequests } from './pending-requests.js';
import { handleRequest, inboxLost, type FlowContext } from './request-flow.js';

export interface Responder {
  app: FastifyInstance;
  pending: PendingRequests;
  /** Stops accepting clients, then waits up to drainTimeoutMs for held ones. */
  drain(drainTimeoutMs: number): Promise<void>;
}

/** What a responder may share with others of its process. */
export interface ResponderDeps {
  registry?: Registry;
  /** The asynchronous requests' store; without one, an embedded store of this responder's own. */
  asyncStore?: AsyncStore;
  /** Called for each asynchronous result stored (the callbacks seam, docs/async.md). */
  onResultStored?: OnResultStored;
  /** Sends the callbacks of stored results (responder/callbacks/); without one, a request naming a callback is refused. */
  callbacks?: CallbackDispatcher;
}

export async function buildResponder(
  settings: ResponderSettings,
  transport: Transport,
  metrics: ResponderMetrics,
  log: Logger,
  deps: ResponderDeps = {},
): Promise<Responder> {
  const pending = new PendingRequests(settings.maxPending);
  const inbox: ReplyInbox = await transport.openReplyInbox(
    settings.queue,
    (message) => onReply(message, settings, pending, metrics, log),
    (lost) => inboxLost(flow, lost),
  );
  const flow: FlowContext = { settings, transport, metrics, log, pending, replyTo: () => inbox.address, readingBody: new WeakSet() };
  const async = settings.async ? await startAsync(settings, transport, log, deps) : undefined;
  if (async) flow.async = asyncSubmit(flow, async.context);
  const handle = async
    ? (req: Parameters<typeof handleRequest>[1], res: Parameters<typeof handleRequest>[2], id: string) =>
        (req.url ?? '').startsWith(RESERVED_PREFIX) ? handleStatus(flow, async.context, req, res, id) : handleRequest(flow, req, res, id)
    : (req: Parameters<typeof handleRequest>[1], res: Parameters<typeof handleRequest>[2], id: string) => handleRequest(flow, req, res, id);
  const app = createHttpServer({ settings, metrics, log, readingBody: flow.readingBody, handle });
  return {
    app,
    pending,
    async drain(drainTimeoutMs) {
      const closing = app.close(); // stops accepting; held clients keep their connections
      const drained = await pending.drained(drainTimeoutMs);
      if (!drained) log.warn({ held: pending.size }, 'drain timeout: some clients are still waiting');
      await closing;
      await inbox.close();
      await async?.stop();
    },
  };
}

/** The asynchronous side of a responder: its store, and its share of the queue's results. */
async function startAsync(
  settings: ResponderSettings,
  transport: Transport,
  log: Logger,
  deps: ResponderDeps,
): Promise<{ context: AsyncContext; stop(): Promise<void> }> {
  const a = settings.async!;
  const metrics = asyncMetrics(deps.registry ?? new Registry(), settings.queue);
  const ownStore = deps.asyncStore ? undefined : new MemoryAsyncStore(ASYNC_DEFAULTS.storeMaxBytes, metrics.expired);
  const store = deps.asyncStore ?? ownStore!;
  const context: AsyncContext = {
    mode: a.mode,
    resultTtlMs: a.resultTtlMs ?? ASYNC_DEFAULTS.resultTtlMs,
    store,
    metrics,
    resultsAddress: asyncResultsAddress(settings.queue),
    callbacks: { ...(deps.callbacks ? { dispatcher: deps.callbacks } : {}), ...(a.callbacks ? { route: a.callbacks } : {}) },
  };
  const callbacksOn = a.callbacks?.settings.ok === true && a.callbacks.settings.value !== undefined;
  const results: Consumer = await consumeResults(transport, {
    queue: settings.queue,
    store,
    maxResultBytes: a.maxResultBytes ?? ASYNC_DEFAULTS.maxResultBytes,
    metrics,
    onResultStored: withCallbacks(settings.queue, a.callbacks, deps),
    readCallback: callbacksOn && deps.callbacks !== undefined,
    log,
  });
  const gauge = setInterval(() => void store.size().then(metrics.records, () => undefined), 5_000);
  gauge.unref();
  return {
    context,
    async stop() {
      clearInterval(gauge);
      await results.stop();
      await ownStore?.close();
    },
  };
}

/** The seam: the deps' own hook, then the stored result's callback, sent by the dispatcher. */
function withCallbacks(queue: string, route: RouteCallbacks | undefined, deps: ResponderDeps): OnResultStored {
  return (stored) => {
    deps.onResultStored?.(stored);
    if (stored.callbackUrl === undefined || !deps.callbacks || !route) return;
    const { status, headers, body } = stored.result;
    deps.callbacks.deliver({
      requestId: stored.id,
      namespace: route.namespace,
      queue,
      callbackUrl: stored.callbackUrl,
      settings: route.settings.ok ? route.settings.value : undefined,
      response: { status, headers, body },
    });
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
