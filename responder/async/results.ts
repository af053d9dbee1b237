/**
 * Where the app's answers to asynchronous requests arrive: one address per
 * queue (`kueuer.reply.<queue>.async`), consumed by every responder replica
 * of the queue, so an answer is stored even when the replica that accepted
 * the request is gone. A delivery is acknowledged once its result is stored;
 * a store that fails hands it back to the broker.
 */
import type { Logger } from 'pino';
import { decodeResponse } from '../../shared/envelope.js';
import { errorBody } from '../../shared/error-catalogue.js';
import { decodeCancelReport, REPLY_ADDRESS_PREFIX, type Consumer, type Transport } from '../../shared/transport/transport.js';
import type { AsyncMetrics } from './metrics.js';
import { resultBytes, type AsyncStore, type StoredResult } from './store.js';

/** The one results address of a queue. */
export function asyncResultsAddress(queue: string): string {
  return `${REPLY_ADDRESS_PREFIX}${queue}.async`;
}

/**
 * The seam for callbacks (responder/callbacks/, another module): called once
 * for each result stored, after it is stored. It must not throw; it runs on
 * whichever replica stored the result (exactly one: the store writes a
 * result once). `callbackUrl` is the callback accepted with the request.
 */
export type OnResultStored = (stored: { queue: string; id: string; result: StoredResult; callbackUrl?: string }) => void;

export interface ResultsOptions {
  queue: string;
  store: AsyncStore;
  /** Largest result stored; a larger one is stored as a 502 async_result_too_large. */
  maxResultBytes: number;
  metrics: AsyncMetrics;
  onResultStored: OnResultStored;
  /** Whether the Service has callbacks: the stored callback URL is read then only. */
  readCallback: boolean;
  log: Logger;
}

/** A result over the size limit: the client learns why instead of finding nothing. */
function tooLarge(id: string, bytes: number, limit: number): StoredResult {
  const body = errorBody('async_result_too_large', `the app's answer takes ${bytes} bytes; results are kept up to ${limit} bytes`, id);
  return { status: 502, headers: [['content-type', 'application/json']], body };
}

export function consumeResults(transport: Transport, o: ResultsOptions): Promise<Consumer> {
  return transport.consume(asyncResultsAddress(o.queue), { concurrency: 16 }, async ({ message }) => {
    // A sidecar's word on a cancelled request: it skipped it, or was running it (docs/async.md, "Cancel").
    const report = decodeCancelReport(message);
    if (report === null || (report && report.queue !== o.queue)) {
      o.log.warn({ queue: report?.queue }, 'dropped a malformed cancel report, or one of another queue');
      return;
    }
    if (report) {
      await o.store.noteCancel(o.queue, report.id, report.app);
      o.log.info({ reqId: report.id, app: report.app }, 'a sidecar reported on a cancelled request');
      return;
    }
    let response;
    try {
      response = decodeResponse(message);
    } catch (err) {
      o.log.warn({ err: (err as Error).message }, 'dropped a malformed asynchronous result');
      return;
    }
    if (response.queue !== o.queue) {
      o.log.warn({ reqId: response.id, queue: response.queue }, 'dropped an asynchronous result of another queue');
      return;
    }
    const { id, status, reason, headers, body, trailers } = response;
    let result: StoredResult = { status, headers, body, ...(reason !== undefined ? { reason } : {}), ...(trailers ? { trailers } : {}) };
    const bytes = resultBytes(result);
    if (bytes > o.maxResultBytes) result = tooLarge(id, bytes, o.maxResultBytes);
    // A store error rejects: the broker hands the result out again.
    if (!(await o.store.complete(o.queue, id, result))) {
      o.metrics.dropped();
      o.log.info({ reqId: id }, 'dropped an asynchronous result: its request is unknown, expired, removed or cancelled, or the store is full');
      return;
    }
    o.metrics.completed();
    o.log.info({ reqId: id, status: result.status }, 'stored an asynchronous result');
    const callbackUrl = o.readCallback ? await callbackOf(o, id) : undefined;
    try {
      o.onResultStored({ queue: o.queue, id, result, ...(callbackUrl !== undefined ? { callbackUrl } : {}) });
    } catch (err) {
      o.log.error({ reqId: id, err: (err as Error).message }, 'onResultStored failed');
    }
  });
}

/** The callback stored with a request; a store error here is logged, not retried (the result is stored). */
async function callbackOf(o: ResultsOptions, id: string): Promise<string | undefined> {
  try {
    return (await o.store.get(o.queue, id))?.callbackUrl;
  } catch (err) {
    o.log.error({ reqId: id, err: (err as Error).message }, 'could not read the callback of a stored result; it is not sent (the result can be polled)');
    return undefined;
  }
}
