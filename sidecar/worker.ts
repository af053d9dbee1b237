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
import { watchCancelled } from './cancelled.js';
import type { AppClient, AppOutcome } from './app-client.js';
import type { SidecarMetrics } from './metrics.js';
import { retry, type BackoffOptions } from '../shared/retry.js';
import { deadLetterQueue } from '../shared/queue-names.js';

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

/** Between calls of the app for a --retry-statuses answer: 100 ms doubling to 1 s, jittered. */
const STATUS_RETRY: BackoffOptions = { baseMs: 100, capMs: 1000, jitter: true };

/** A --retry-statuses answer, thrown inside the retry loop so that shared/retry.ts calls the app again. */
class StatusToRetry extends Error {
  constructor(
    readonly outcome: AppOutcome & { kind: 'response' },
    readonly call: number,
  ) {
    super(`the app answered ${outcome.response.status}`);
  }
}

/**
 * Whether a rejected handler hands its delivery back to the broker (amqp nacks with requeue,
 * memory requeues), or, on Kafka, which cannot hand one record back, the consumer keeps it.
 */
export function handsDeliveriesBack(transport: Pick<Transport, 'kind'>): boolean {
  return transport.kind !== 'kafka';
}

export { deadLetterQueue };
/** Set on a dead-lettered copy: why it is there. */
export const DEAD_LETTER_REASON = 'x-kueuer-dead-letter-reason';

export interface Worker {
  consumer: Consumer;
  /** Stops taking requests, finishes and acks those in flight. */
  stop(): Promise<void>;
}

export async function startWorker(settings: WorkerSettings, transport: Transport, appClient: AppClient, metrics: SidecarMetrics, log: Logger): Promise<Worker> {
  const cancelled = await watchCancelled(transport, settings.queue, REPLY_CONFIRM_TIMEOUT_MS, log);
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
    if (cancelled.skip(req)) {
      metrics.processed('cancelled');
      return;
    }
    cancelled.started(req);
    metrics.queueWait(Math.max(0, Date.now() - req.enqueuedAt) / 1000);
    metrics.inFlightInc();
    try {
      const started = process.hrtime.bigint();
      const outcome = await callApp(req, delivery, reqLog);
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
      cancelled.ended(req);
      metrics.inFlightDec();
    }
  };

  /**
   * Calls the app, again for a --retry-statuses answer (marked redelivered) with backoff, up to
   * --max-attempts and the deadline; an exhausted request's last answer goes to its client and,
   * with --dead-letter on, a copy of it to the dead-letter queue.
   */
  async function callApp(req: QueuedRequest, delivery: Delivery, reqLog: Logger): Promise<AppOutcome> {
    const policy = settings.retry;
    try {
      return await retry(
        async (call) => {
          const outcome = await appClient.call(req, delivery.redelivered || call > 1, reqLog, metrics.appRetry);
          if (policy && outcome.kind === 'response' && policy.statuses.has(outcome.response.status)) throw new StatusToRetry(outcome, call);
          return outcome;
        },
        {
          ...STATUS_RETRY,
          until: req.deadline,
          maxAttempts: policy?.maxAttempts ?? 1,
          retryable: (err) => err instanceof StatusToRetry,
          onRetry: () => metrics.appRetry(),
        },
      );
    } catch (err) {
      if (!(err instanceof StatusToRetry) || !policy) throw err;
      // Exhausted: the client gets the app's last answer; a copy of the request is kept for inspection.
      const status = err.outcome.response.status;
      if (policy.deadLetter) {
        const copy = { meta: { ...delivery.message.meta, [DEAD_LETTER_REASON]: `the app answered ${status} ${err.call} times` }, body: delivery.message.body };
        await retry(() => transport.publishRequest(deadLetterQueue(settings.queue), copy, { timeoutMs: REPLY_CONFIRM_TIMEOUT_MS }), {
          until: publishGiveUpAt(req.deadline),
          onRetry: (e) => reqLog.warn({ err: (e as Error).message }, 'could not publish the dead-letter copy; retrying'),
        });
      }
      metrics.deadLetter();
      reqLog.warn(
        { status, calls: err.call, deadLetter: policy.deadLetter ? deadLetterQueue(settings.queue) : null },
        'giving up on a request the app keeps failing',
      );
      return err.outcome;
    }
  }

  /**
   * How long a publish for a request that ran is retried (docs/kafka.md, "Who tries again"). A
   * transport that hands a rejected delivery back to the broker (amqp, memory) gets it back
   * after REPLY_RETRY_WINDOW_MS; Kafka cannot hand one record back, and rerunning the handler
   * would only call the app again for an answer it already gave, so there the reply is retried
   * until the request's deadline.
   */
  function publishGiveUpAt(deadline: number): number {
    return handsDeliveriesBack(transport) ? Math.min(deadline, Date.now() + REPLY_RETRY_WINDOW_MS) : deadline;
  }

  /**
   * Publishes a reply without ever running the app again. A broker that cannot take it now
   * (restarting) is retried until publishGiveUpAt, then the handler rejects (the request goes back
   * to the queue on amqp and memory). A destination that is not a reply inbox is dropped at once,
   * and an inbox that does not exist (its responder died) after REPLY_INBOX_GRACE_MS (a responder
   * reconnecting after a broker restart re-creates its inbox within it): both are counted, and the
   * request is acked, since nobody can receive its answer.
   */
  async function deliverReply(replyTo: string, response: QueuedResponse, deadline: number, reqLog: Logger): Promise<void> {
    const giveUpAt = publishGiveUpAt(deadline);
    const inboxGraceEnd = Math.min(deadline, Date.now() + REPLY_INBOX_GRACE_MS);
    const inboxGone = (err: unknown) => isKueuerError(err, 'KUEUER_ERR_REPLY_INBOX_GONE');
    const publish = () =>
      transport.publishReply(replyTo, encodeResponse(response), { timeoutMs: REPLY_CONFIRM_TIMEOUT_MS }).catch((err: unknown) => {
        if (!inboxGone(err) && !isKueuerError(err, 'KUEUER_ERR_ENVELOPE')) metrics.publishError();
        throw err;
      });
    let attempts = 0;
    try {
      await retry(
        (attempt) => {
          attempts = attempt;
          return publish();
        },
        {
          until: (err) => (inboxGone(err) ? inboxGraceEnd : giveUpAt),
          retryable: (err) => !isKueuerError(err, 'KUEUER_ERR_ENVELOPE'),
          onRetry: (err, attempt) => reqLog.warn({ err: (err as Error).message, attempt }, 'could not publish the reply; retrying'),
        },
      );
    } catch (err) {
      const message = (err as Error).message;
      if (isKueuerError(err, 'KUEUER_ERR_ENVELOPE')) {
        metrics.replyDropped('invalid_destination');
        reqLog.error({ err: message }, 'dropped a reply: its destination is not a reply inbox');
        return;
      }
      if (inboxGone(err)) {
        metrics.replyDropped('inbox_gone');
        reqLog.warn({ err: message, attempts }, 'dropped a reply: its responder is gone; the request is acked and not run again');
        return;
      }
      reqLog.warn({ err: message, attempts }, 'could not publish the reply in time; the handler gives the request back');
      throw err;
    }
  }

  const consumer = await transport.consume(settings.queue, { concurrency: settings.concurrency }, handle);
  return {
    consumer,
    async stop() {
      await consumer.stop();
      await cancelled.close();
    },
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
