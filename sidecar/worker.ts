/**
 * The sidecar's work loop: take a request from the queue, call the app,
 * publish the app's response to the request's reply destination, and only
 * then let the transport ack it. A handler that throws (reply not published)
 * hands the request back to the queue for another try.
 */
import type { Logger } from 'pino';
import { decodeRequest, encodeResponse, type QueuedRequest, type QueuedResponse } from '../shared/envelope.js';
import type { HeaderPairs } from '../shared/http-headers.js';
import type { Consumer, Delivery, Transport } from '../shared/transport/transport.js';
import type { AppClient, AppOutcome } from './app-client.js';
import type { SidecarMetrics } from './metrics.js';
import { backoffMs } from './retry-policy.js';

export interface WorkerSettings {
  queue: string;
  concurrency: number;
  /** How long to wait for the broker to confirm a reply. */
  replyTimeoutMs: number;
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

/** How long a sidecar keeps retrying a reply: a broker restart and the responders' reconnection fit in it. */
export const REPLY_RETRY_WINDOW_MS = 30_000;

export const deadLetterQueue = (queue: string): string => `${queue}.dead-letter`;
/** Set on a dead-lettered copy: why it is there. */
export const DEAD_LETTER_REASON = 'x-kueuer-dead-letter-reason';

export interface Worker {
  consumer: Consumer;
  /** Stops taking requests, finishes and acks those in flight. */
  stop(): Promise<void>;
}

export async function startWorker(
  settings: WorkerSettings,
  transport: Transport,
  appClient: AppClient,
  metrics: SidecarMetrics,
  log: Logger,
): Promise<Worker> {
  const handle = async (delivery: Delivery): Promise<void> => {
    let req: QueuedRequest;
    try {
      req = decodeRequest(delivery.message);
    } catch (err) {
      // Retrying cannot fix a malformed message: log it and let it be acked.
      metrics.consumeError();
      log.error({ err: (err as Error).message, meta: delivery.message.meta }, 'dropped a malformed request message');
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
            await transport.publishRequest(deadLetterQueue(settings.queue), copy, { timeoutMs: settings.replyTimeoutMs });
          }
          metrics.deadLetter();
          reqLog.warn({ status: outcome.response.status, calls: call, deadLetter: retry.deadLetter ? deadLetterQueue(settings.queue) : null }, 'giving up on a request the app keeps failing');
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
      // A reply that cannot be published (broker restarting, responder inbox not back yet) is retried
      // for up to REPLY_RETRY_WINDOW_MS (and never past the deadline) without calling the app again;
      // only then does the request go back to the queue.
      const giveUpAt = Math.min(req.deadline, Date.now() + REPLY_RETRY_WINDOW_MS);
      for (let attempt = 1; ; attempt++) {
        try {
          await transport.publishReply(req.replyTo, encodeResponse(response), { timeoutMs: settings.replyTimeoutMs });
          break;
        } catch (err) {
          metrics.publishError();
          const wait = backoffMs(attempt);
          if (Date.now() + wait >= giveUpAt) {
            reqLog.warn({ err: (err as Error).message, attempts: attempt }, 'could not publish the reply before the deadline; the request goes back to the queue');
            throw err;
          }
          reqLog.warn({ err: (err as Error).message, attempt }, 'could not publish the reply; retrying');
          await new Promise((r) => setTimeout(r, wait));
        }
      }
      metrics.processed(String(response.status));
      reqLog.debug({ status: response.status, attempts: outcome.attempts }, 'replied');
    } finally {
      metrics.inFlightDec();
    }
  };

  const consumer = await transport.consume(settings.queue, { concurrency: settings.concurrency }, handle);
  return {
    consumer,
    stop: () => consumer.stop(),
  };
}

const JSON_HEADERS: HeaderPairs = [['content-type', 'application/json']];

/** The response to send for an app outcome, or null when nobody waits for one. */
export function responseFor(req: QueuedRequest, outcome: AppOutcome): QueuedResponse | null {
  const error = (status: number, code: string, message: string): QueuedResponse => ({
    id: req.id,
    queue: req.queue,
    status,
    headers: JSON_HEADERS,
    body: Buffer.from(JSON.stringify({ error: code, message, requestId: req.id })),
  });
  switch (outcome.kind) {
    case 'response':
      return { id: req.id, queue: req.queue, ...outcome.response };
    case 'unreachable':
      return error(502, 'app_unreachable', `the app could not be reached: ${outcome.error}`);
    case 'too_large':
      return error(502, 'response_too_large', 'the app response body is over the size limit');
    case 'timeout':
      return null;
  }
}
