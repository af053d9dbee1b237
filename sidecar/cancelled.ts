/**
 * The sidecar's side of cancelled asynchronous requests (docs/async.md, "Cancel"): the queue's
 * cancellations (RabbitMQ: its stream; Kafka: its cancellation topic; each read back over its
 * retention at start), a skip for a request cancelled before the app was called, and a report of
 * each to the request's results address, so the client learns whether the app ran. Without a
 * transport that carries cancels (memory, which withdraws a request instead) nothing is ever
 * skipped here.
 */
import type { Logger } from 'pino';
import type { QueuedRequest } from '../shared/envelope.js';
import { encodeCancelReport, type CancelReport, type Transport } from '../shared/transport/transport.js';

export interface CancelledRequests {
  /** True when the request was cancelled: acked without calling the app, reported as `not-run`. */
  skip(req: QueuedRequest): boolean;
  /** The app is called for it now: a cancel that comes meanwhile is reported as `running`. */
  started(req: QueuedRequest): void;
  ended(req: QueuedRequest): void;
  close(): Promise<void>;
}

export async function watchCancelled(transport: Transport, queue: string, timeoutMs: number, log: Logger): Promise<CancelledRequests> {
  /** Requests handed to the app now, by id: their reply destination. */
  const running = new Map<string, string>();
  // Best effort: a report lost leaves the poll saying `queued` (the truth as far as Kueuer knows).
  const report = (id: string, replyTo: string, app: CancelReport): void => {
    transport
      .publishReply(replyTo, encodeCancelReport(queue, id, app), { timeoutMs })
      .catch((err: unknown) => log.warn({ reqId: id, app, err: (err as Error).message }, 'could not report on a cancelled request'));
  };
  // Resolves once read up to now (bounded): a request cancelled while no sidecar ran is skipped too.
  const watch = await transport.watchCancellations?.(queue, (id) => {
    const replyTo = running.get(id);
    if (replyTo === undefined) return;
    log.info({ reqId: id }, 'a request the app is running was cancelled: its answer will be discarded');
    report(id, replyTo, 'running');
  });
  return {
    skip(req) {
      if (!watch?.isCancelled(req.id)) return false;
      log.info({ reqId: req.id }, 'request cancelled before the app was called: acked without calling it');
      report(req.id, req.replyTo, 'not-run');
      return true;
    },
    started: (req) => running.set(req.id, req.replyTo),
    ended: (req) => running.delete(req.id),
    close: async () => watch?.close(),
  };
}
