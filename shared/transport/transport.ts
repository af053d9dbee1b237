/**
 * The one transport interface every backend implements (memory, amqp and
 * kafka). Modelled on a queue library's transport seam: the responder
 * publishes requests and owns a private reply inbox; the sidecar consumes a
 * queue with bounded concurrency and publishes replies. Acknowledgement is the
 * transport's job: a delivery is acknowledged when its handler resolves, so
 * "ack only after the reply is published" is simply "publish the reply inside
 * the handler". What a handler that rejects means depends on the backend; see
 * DeliveryHandler.
 *
 * This file and backend.ts are the vocabulary: they load no broker client.
 * Only create-transport.ts (and the amqp/ and kafka/ folders it loads) do.
 */
import { META, type WireMessage } from '../envelope.js';
import { isRequestId } from '../request-id.js';

/** Every broker backend names a responder's private inbox `kueuer.reply.<queue>.<random>`. */
export const REPLY_ADDRESS_PREFIX = 'kueuer.reply.';

/** A reply destination a sidecar may publish to: a responder's inbox, never a request queue. */
export function isReplyAddress(address: string): boolean {
  return address.startsWith(REPLY_ADDRESS_PREFIX) && address.length <= 255 && /^[A-Za-z0-9._-]+$/.test(address);
}

export interface Delivery {
  message: WireMessage;
  /** True when the broker has handed this message out before (crash or requeue). */
  redelivered: boolean;
}

/**
 * Handles one delivery. Resolving acknowledges it. Rejecting means, per backend:
 * - memory: the delivery goes back to the front of the queue at once, marked
 *   redelivered, and any consumer with a free slot takes it again.
 * - amqp: it is nacked with requeue; RabbitMQ puts it back in the queue and
 *   hands it out again (to this or another consumer), marked redelivered.
 * - kafka: nothing is handed back (Kafka cannot return one record). The same
 *   consumer calls the handler again, marked redelivered, backing off 100 ms doubling to 1 s,
 *   until the request's deadline (`kueuer-deadline`; without one, after the first failure) has
 *   passed or the consumer is stopping; it then logs the request as given up
 *   and treats it as done: its offset is committed past (in transactional mode
 *   with no reply; at-most-once had committed it before the first call). Its
 *   client times out.
 */
export type DeliveryHandler = (delivery: Delivery) => Promise<void>;

export interface ConsumeOptions {
  /** Upper bound on deliveries whose handler is still running. */
  concurrency: number;
}

export interface Consumer {
  /** Handlers currently running. */
  readonly inFlight: number;
  /** Stops taking new deliveries, waits for running handlers and their acks. */
  stop(): Promise<void>;
}

export interface ReplyInbox {
  /**
   * Transport address to put in a request's reply destination, read at each publish: after the
   * inbox was lost (see LostInbox) it names the fresh inbox that replaced it.
   */
  readonly address: string;
  close(): Promise<void>;
}

/**
 * A reply inbox the broker deleted while its owner lived (amqp: it expired while the connection
 * was cut for longer than its x-expires, or an operator deleted it). The replies sent to `address`
 * are gone or will never come; the transport already consumes a fresh inbox (ReplyInbox.address)
 * when it reports this.
 */
export interface LostInbox {
  /** The address that was lost: requests published with it as reply destination get no reply. */
  address: string;
  /** Why, for logs and for the clients answered. */
  cause: string;
}

export interface PublishOptions {
  /** Fail with KUEUER_ERR_PUBLISH_TIMEOUT when the broker has not confirmed by then. */
  timeoutMs: number;
}

export interface Transport {
  /** `memory`, `amqp`, … */
  readonly kind: string;
  /** Connected and able to publish right now; drives /readyz and fail-fast 503s. */
  isReady(): boolean;
  /** Resolves once the broker has durably accepted the request. */
  publishRequest(queue: string, message: WireMessage, options: PublishOptions): Promise<void>;
  /**
   * A destination only this caller reads; its replies are passed to onReply. onLost is called when
   * the broker deleted the inbox under its owner (only backends whose inbox can be lost so call it:
   * amqp); the inbox's address then names a fresh one.
   */
  openReplyInbox(queue: string, onReply: (message: WireMessage) => void, onLost?: (lost: LostInbox) => void): Promise<ReplyInbox>;
  /**
   * Resolves once the broker has accepted the reply. Fails with KUEUER_ERR_ENVELOPE when replyTo is
   * not a reply inbox (never worth retrying), KUEUER_ERR_REPLY_INBOX_GONE when (amqp) the inbox
   * does not exist, and a broker error when the broker cannot take it now.
   */
  publishReply(replyTo: string, message: WireMessage, options: PublishOptions): Promise<void>;
  consume(queue: string, options: ConsumeOptions, handler: DeliveryHandler): Promise<Consumer>;
  /**
   * Takes back a published request no consumer has taken yet (its client left), so it costs the
   * app nothing; true when it was still waiting. Only the memory backend can: a request published
   * to RabbitMQ or Kafka stays there, and a sidecar skips it only once its deadline has passed.
   */
  withdrawRequest?(queue: string, id: string): boolean;
  /**
   * Tells every consumer of the queue, now and those that start before `deadline`, that the
   * request `id` is cancelled: a consumer that takes it then acks it without running it
   * (docs/async.md, "Cancel"). Resolves once the broker has durably accepted the cancellation
   * (RabbitMQ: confirmed; Kafka: written to all in-sync replicas, acks=all). RabbitMQ (a stream per
   * queue, amqp/cancellations.ts) and Kafka (a topic per queue, kafka/cancellations.ts); the
   * embedded broker withdraws instead (withdrawRequest). Rejects a malformed id.
   */
  cancelRequest?(queue: string, id: string, deadline: number, options: PublishOptions): Promise<void>;
  /**
   * A consumer's view of the queue's cancellations: resolves once it has read those already
   * published (or after a bounded wait: RabbitMQ 5 s, Kafka 10 s), then calls onCancel for each
   * new one. Never rejects for cancellations it cannot read: it says so in the log, and the
   * consumer runs without them (RabbitMQ until its next connection; Kafka until a retry succeeds).
   */
  watchCancellations?(queue: string, onCancel: (id: string) => void, options?: { capacity?: number }): Promise<CancellationWatch>;
  close(): Promise<void>;
}

/** The cancelled ids a consumer knows of: bounded, each kept until its request's deadline. */
export interface CancellationWatch {
  isCancelled(id: string): boolean;
  /** Ids held now. */
  readonly size: number;
  /** Ids dropped before their deadline to stay within the bound (their requests fall back to the deadline skip). */
  readonly evicted: number;
  close(): Promise<void>;
}

/** What a sidecar reports of a cancelled asynchronous request, to its results address. */
export type CancelReport = 'not-run' | 'running';
const CANCEL_REPORT_TYPE = 'cancel-report';
const CANCEL_REPORT_KEY = 'kueuer-cancel';

export function encodeCancelReport(queue: string, id: string, app: CancelReport): WireMessage {
  return { meta: { [META.type]: CANCEL_REPORT_TYPE, [META.id]: id, [META.queue]: queue, [CANCEL_REPORT_KEY]: app }, body: Buffer.alloc(0) };
}

/** The report a message carries; undefined when it is no cancel report; null when it is a malformed one. */
export function decodeCancelReport(message: WireMessage): { queue: string; id: string; app: CancelReport } | null | undefined {
  if (message.meta[META.type] !== CANCEL_REPORT_TYPE) return undefined;
  const id = message.meta[META.id] ?? '';
  const queue = message.meta[META.queue] ?? '';
  const app = message.meta[CANCEL_REPORT_KEY];
  if (!isRequestId(id) || (app !== 'not-run' && app !== 'running')) return null;
  return { queue, id, app };
}

/** A queue's backlog as the autoscaler sees it. */
export interface QueueDepth {
  backlog: number;
  /** Kafka: partitions of the queue's topic (more consumers than that sit idle). */
  partitions?: number;
}

/** Reads a queue's backlog straight from the broker; one per backend that the webhook can read. */
export interface QueueDepthReader {
  readonly kind: string;
  /** One read of the broker per call. */
  read(queue: string): Promise<QueueDepth>;
  close(): Promise<void>;
}
