/**
 * The sidecar's work loop: take a request from the queue, call the app,
 * publish the app's response to the request's reply destination, and only
 * then let the transport ack it. A handler that throws (reply not published)
 * hands the request back to the queue for another try.
 */
import type { Logger } from 'pino';
import { decodeRequest, encodeResponse, UnforwardableRequestError, type QueuedRequest, type QueuedResponse, type WireMessage } from '../shared/envelope.js';
import { errorBody, type ClientErrorCode } from '../shared/error-catalogue.js';
import { isKueuerError } from '../shared/errors.js';
import { statusLabel } from '../shared/metrics.js';
import type { HeaderPairs } from '../shared/http-headers.js';
import type { Consumer, Delivery, Transport } from '../shared/transport/transport.js';
import type { AppClient, AppOutcome } from './app-client.js';
import type { SidecarMetrics } from './metrics.js';
import { backoffMs } from './retry-policy.js';

export interface WorkerSettings {
  queue: string;
  concurrency: number;
  retry?: RetrySettings;
}

export interface RetrySettings {
  /** App statuses worth another call (a poison request answers them every time). */
  statuses: ReadonlySet<number>;
  /** Calls of the app per request for those statuses. */
  maxAttempts: number;
  /** Copy exhausted requests to `<queue>.dead-letter`. */
  deadLetter: boolean;
}

/**
 * How long one publish of a reply (or of a dead-letter copy) waits for the broker's confirm
 * before it counts as failed and is retried within REPLY_RETRY_WINDOW_MS: long enough for a
 * loaded broker, short enough to retry several times within that window. Not a flag: the
 * window, not this, bounds how long a reply is tried.
 */
export const REPLY_CONFIRM_TIMEOUT_MS = 5_000;
/** How long a sidecar keeps retrying a reply the broker cannot take: a broker restart and the responders' reconnection fit in it. */
export const REPLY_RETRY_WINDOW_MS = 30_000;
/** How long a reply whose inbox does not exist is retried before it is dropped (the responder is gone). */
export const REPLY_INBOX_GRACE_MS = 5_000;

export const deadLetterQueue = (queue: string): string => `${queue}.dead-letter`;
/** Set on a dead-lettered copy: why it is there. */
export const DEAD_LETTER_REASON = 'x-kueuer-dead-letter-reason';

export interface Worker {
  consumer: Consumer;
  /** Stops taking requests, finishes and acks those in flight. */
  stop(): Promise<void>;
}

export async function startWorker(settings: WorkerSettings, transport: Transport, appClient: AppClient, metrics: SidecarMetrics, log: Logger): Promise<Worker> {
  const handle = async (delivery: Delivery): Promise<void> => {
    let req: QueuedRequest;
    try {
      req = decodeRequest(delivery.message);
    } catch (err) {
      // Retrying cannot fix a malformed message: answer it if it says where, then let it be acked.
      // Header values (cookies, tokens) are never logged: only field names and sizes.
      metrics.consumeError();
      if (err instanceof UnforwardableRequestError && err.route.queue === settings.queue) {
        const reqLog = log.child({ reqId: err.route.id });
        reqLog.warn({ err: err.message, message: describeMessage(delivery.message) }, 'refused a request the app cannot be sent; answering its client');
        if (Date.now() < err.route.deadline) {
          const { code, status, message } = err.problem;
          await deliverReply(err.route.replyTo, errorResponse(err.route, status, code, message), err.route.deadline, reqLog);
        }
        return;
      }
      log.error({ err: (err as Error).message, message: describeMessage(delivery.message) }, 'dropped a malformed request message');
      return;
    }
    const reqLog = log.child({ reqId: req.id });
    if (req.queue !== settings.queue) {
      metrics.consumeError();
      reqLog.error({ queue: req.queue }, 'dropped a request addressed to another queue');
      return;
    }
    if (Date.now() >= req.deadline) {
      metrics.processed('expired');
      reqLog.warn('request expired in the queue; its client has had its 504');
      return;
    }
    metrics.queueWait(Math.max(0, Date.now() - req.enqueuedAt) / 1000);
    metrics.inFlightInc();
    try {
      const started = process.hrtime.bigint();
      const retry = settings.retry;
      let outcome = await appClient.call(req, delivery.redelivered, reqLog, metrics.appRetry);
      for (let call = 1; retry && outcome.kind === 'response' && retry.statuses.has(outcome.response.status); call++) {
        const wait = backoffMs(call);
        if (call >= retry.maxAttempts || Date.now() + wait >= req.deadline) {
          // Exhausted: the client gets the app's last answer; a copy of the request is kept for inspection.
          const reason = `the app answered ${outcome.response.status} ${call} times`;
          if (retry.deadLetter) {
            const copy = { meta: { ...delivery.message.meta, [DEAD_LETTER_REASON]: reason }, body: delivery.message.body };
            await transport.publishRequest(deadLetterQueue(settings.queue), copy, { timeoutMs: REPLY_CONFIRM_TIMEOUT_MS });
          }
          metrics.deadLetter();
          reqLog.warn(
            { status: outcome.response.status, calls: call, deadLetter: retry.deadLetter ? deadLetterQueue(settings.queue) : null },
            'giving up on a request the app keeps failing',
          );
          break;
        }
        metrics.appRetry();
        await new Promise((r) => setTimeout(r, wait));
        outcome = await appClient.call(req, true, reqLog, metrics.appRetry);
      }
      metrics.appDuration(Number(process.hrtime.bigint() - started) / 1e9);
      const response = responseFor(req, outcome);
      if (!response) {
        metrics.processed('expired');
        reqLog.warn('the app did not answer before the deadline');
        return;
      }
      await deliverReply(req.replyTo, response, req.deadline, reqLog);
      metrics.processed(statusLabel(response.status));
      reqLog.debug({ status: response.status, attempts: outcome.attempts }, 'replied');
    } finally {
      metrics.inFlightDec();
    }
  };

  /**
   * Publishes a reply without ever running the app again. A broker that cannot take it now
   * (restarting) is retried for up to REPLY_RETRY_WINDOW_MS, then the request goes back to the
   * queue (thrown). A destination that is not a reply inbox is dropped at once, and an inbox that
   * does not exist (its responder died) after REPLY_INBOX_GRACE_MS (a responder reconnecting
   * after a broker restart re-creates its inbox within it): both are counted, and the request is
   * acked, since nobody can receive its answer.
   */
  async function deliverReply(replyTo: string, response: QueuedResponse, deadline: number, reqLog: Logger): Promise<void> {
    const started = Date.now();
    const giveUpAt = Math.min(deadline, started + REPLY_RETRY_WINDOW_MS);
    for (let attempt = 1; ; attempt++) {
      try {
        await transport.publishReply(replyTo, encodeResponse(response), { timeoutMs: REPLY_CONFIRM_TIMEOUT_MS });
        return;
      } catch (err) {
        const message = (err as Error).message;
        if (isKueuerError(err, 'KUEUER_ERR_ENVELOPE')) {
          metrics.replyDropped('invalid_destination');
          reqLog.error({ err: message }, 'dropped a reply: its destination is not a reply inbox');
          return;
        }
        const inboxGone = isKueuerError(err, 'KUEUER_ERR_REPLY_INBOX_GONE');
        if (!inboxGone) metrics.publishError();
        const wait = backoffMs(attempt);
        if (inboxGone && Date.now() + wait >= Math.min(deadline, started + REPLY_INBOX_GRACE_MS)) {
          metrics.replyDropped('inbox_gone');
          reqLog.warn({ err: message, attempts: attempt }, 'dropped a reply: its responder is gone; the request is acked and not run again');
          return;
        }
        if (Date.now() + wait >= giveUpAt) {
          reqLog.warn({ err: message, attempts: attempt }, 'could not publish the reply before the deadline; the request goes back to the queue');
          throw err;
        }
        reqLog.warn({ err: message, attempt }, 'could not publish the reply; retrying');
        await new Promise((r) => setTimeout(r, wait));
      }
    }
  }

  const consumer = await transport.consume(settings.queue, { concurrency: settings.concurrency }, handle);
  return {
    consumer,
    stop: () => consumer.stop(),
  };
}

const JSON_HEADERS: HeaderPairs = [['content-type', 'application/json']];

/** A Kueuer error answer for the request's client. */
function errorResponse(route: { id: string; queue: string }, status: number, code: ClientErrorCode, message: string): QueuedResponse {
  return { id: route.id, queue: route.queue, status, headers: JSON_HEADERS, body: errorBody(code, message, route.id) };
}

/** What a refused message held, for logs: field names and sizes, never values (they carry cookies and tokens). */
export function describeMessage(message: WireMessage): { fields: Record<string, number>; bodyBytes: number } {
  const fields: Record<string, number> = {};
  for (const [key, value] of Object.entries(message.meta)) fields[key.slice(0, 64)] = typeof value === 'string' ? Buffer.byteLength(value) : 0;
  return { fields, bodyBytes: message.body.length };
}

/** The response to send for an app outcome, or null when nobody waits for one. */
export function responseFor(req: QueuedRequest, outcome: AppOutcome): QueuedResponse | null {
  switch (outcome.kind) {
    case 'response':
      return { id: req.id, queue: req.queue, ...outcome.response };
    case 'unreachable':
      return errorResponse(req, 502, 'app_unreachable', `the app could not be reached: ${outcome.error}`);
    case 'invalid_response':
      return errorResponse(req, 502, 'invalid_app_response', outcome.error);
    case 'too_large':
      return errorResponse(req, 502, 'response_too_large', 'the app response body is over the size limit');
    case 'timeout':
      return null;
  }
}
