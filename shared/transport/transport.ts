/**
 * The one transport interface every backend implements (memory, amqp and
 * kafka). Modelled on a queue library's transport seam: the responder
 * publishes requests and owns a private reply inbox; the sidecar consumes a
 * queue with bounded concurrency and publishes replies. Acknowledgement is the
 * transport's job: a delivery is acked when its handler resolves and handed back
 * to the queue when it rejects, so "ack only after the reply is published" is
 * simply "publish the reply inside the handler".
 */
import type { WireMessage } from '../envelope.js';

export interface Delivery {
  message: WireMessage;
  /** True when the broker has handed this message out before (crash or requeue). */
  redelivered: boolean;
}

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
  /** Transport address to put in a request's reply destination. */
  readonly address: string;
  close(): Promise<void>;
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
  /** A destination only this caller reads; its replies are passed to onReply. */
  openReplyInbox(queue: string, onReply: (message: WireMessage) => void): Promise<ReplyInbox>;
  /** Resolves once the broker has accepted the reply; fails when it cannot, or (amqp) when the inbox does not exist. */
  publishReply(replyTo: string, message: WireMessage, options: PublishOptions): Promise<void>;
  consume(queue: string, options: ConsumeOptions, handler: DeliveryHandler): Promise<Consumer>;
  close(): Promise<void>;
}
