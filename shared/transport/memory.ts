/**
 * Embedded in-process backend: lets `kueuer local` run the whole request path
 * on one machine. It keeps broker semantics: a delivery is leased for a
 * visibility timeout, the lease is renewed while the handler runs (the
 * heartbeat), and a delivery whose consumer stops renewing it without acking
 * comes back, marked redelivered.
 *
 * Unlike a broker it lives in the process's memory, so it is bounded: a
 * publish past `maxQueued` waiting requests or `maxQueuedBytes` of them fails
 * with KUEUER_ERR_QUEUE_FULL (the responder answers 503 queue_full); and a
 * request not yet taken can be withdrawn (its client left), so it costs
 * neither memory nor an app call.
 */
import { randomBytes } from 'node:crypto';
import { META, type WireMessage } from '../envelope.js';
import { KueuerError } from '../errors.js';
import {
  isReplyAddress,
  REPLY_ADDRESS_PREFIX,
  type ConsumeOptions,
  type Consumer,
  type DeliveryHandler,
  type ReplyInbox,
  type Transport,
} from './transport.js';

export interface MemoryTransportOptions {
  /** How long a taken, unacked message stays invisible without a heartbeat. */
  visibilityTimeoutMs: number;
  /** Waiting (not taken) requests a queue holds at most; unbounded when absent. */
  maxQueued?: number;
  /** Bytes of waiting requests (bodies and metadata) a queue holds at most; unbounded when absent. */
  maxQueuedBytes?: number;
}

interface QueuedMessage {
  message: WireMessage;
  deliveries: number;
  /** What it holds in memory: body and metadata, as counted against maxQueuedBytes. */
  bytes: number;
}

/** A message's weight against maxQueuedBytes: its body and its metadata. */
function weightOf(message: WireMessage): number {
  let bytes = message.body.length;
  for (const [k, v] of Object.entries(message.meta)) bytes += k.length + v.length;
  return bytes;
}

class MemoryQueue {
  readonly ready: QueuedMessage[] = [];
  readonly consumers = new Set<MemoryConsumer>();
  /** Bytes of the ready messages. */
  bytes = 0;
  private cursor = 0;

  /** A requeue (front) is never refused: the message was already admitted once. */
  push(item: QueuedMessage, front = false): void {
    this.bytes += item.bytes;
    if (front) this.ready.unshift(item);
    else this.ready.push(item);
    this.dispatch();
  }

  /** Removes a ready message by its request id; false when none waits (taken, or never here). */
  withdraw(id: string): boolean {
    const i = this.ready.findIndex((item) => item.message.meta[META.id] === id);
    if (i < 0) return false;
    this.bytes -= this.ready[i]!.bytes;
    this.ready.splice(i, 1);
    return true;
  }

  private take(): QueuedMessage {
    const item = this.ready.shift()!;
    this.bytes -= item.bytes;
    return item;
  }

  /** Hands ready messages to consumers with free capacity, round-robin. */
  dispatch(): void {
    const consumers = [...this.consumers];
    let idle = 0;
    while (this.ready.length > 0 && idle < consumers.length) {
      const consumer = consumers[this.cursor++ % consumers.length]!;
      if (!consumer.hasCapacity()) {
        idle++;
        continue;
      }
      idle = 0;
      consumer.deliver(this.take());
    }
  }
}

class MemoryConsumer implements Consumer {
  private running = 0;
  private stopping = false;
  private crashed = false;
  private readonly settled = new Set<Promise<void>>();

  constructor(
    private readonly queue: MemoryQueue,
    private readonly options: ConsumeOptions,
    private readonly handler: DeliveryHandler,
    private readonly visibilityTimeoutMs: number,
  ) {}

  get inFlight(): number {
    return this.running;
  }

  hasCapacity(): boolean {
    return !this.stopping && !this.crashed && this.running < this.options.concurrency;
  }

  deliver(item: QueuedMessage): void {
    this.running++;
    item.deliveries++;
    let done = false;
    const requeue = (): void => {
      if (done) return;
      done = true;
      this.queue.push(item, true);
    };
    // The lease: if neither ack nor heartbeat happens in time, the message returns.
    let lease = setTimeout(requeue, this.visibilityTimeoutMs);
    const heartbeat = setInterval(
      () => {
        if (this.crashed) return; // a dead consumer stops renewing; the lease runs out
        clearTimeout(lease);
        lease = setTimeout(requeue, this.visibilityTimeoutMs);
      },
      Math.max(1, Math.floor(this.visibilityTimeoutMs / 3)),
    );

    const run = (async () => {
      let ok = false;
      try {
        await this.handler({ message: item.message, redelivered: item.deliveries > 1 });
        ok = true;
      } catch {
        ok = false;
      }
      clearInterval(heartbeat);
      if (this.crashed) return; // its lease decides; a crashed process acks nothing
      clearTimeout(lease);
      if (!ok) requeue();
      done = true;
    })().finally(() => {
      this.running--;
      this.settled.delete(run);
      this.queue.dispatch();
    });
    this.settled.add(run);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.queue.consumers.delete(this);
    await Promise.allSettled([...this.settled]);
  }

  /** See memoryTestSeam.crash. */
  crash(): void {
    this.crashed = true;
    this.queue.consumers.delete(this);
  }
}

/** Each transport's queues, for the test seam only. */
const queuesOf = new WeakMap<MemoryTransport, ReadonlyMap<string, MemoryQueue>>();

export class MemoryTransport implements Transport {
  readonly kind = 'memory';
  private readonly queues = new Map<string, MemoryQueue>();
  private readonly inboxes = new Map<string, (message: WireMessage) => void>();
  private closed = false;

  constructor(private readonly options: MemoryTransportOptions = { visibilityTimeoutMs: 30_000 }) {
    queuesOf.set(this, this.queues);
  }

  isReady(): boolean {
    return !this.closed;
  }

  async publishRequest(queue: string, message: WireMessage): Promise<void> {
    this.assertOpen();
    const q = this.queueNamed(queue);
    const bytes = weightOf(message);
    const { maxQueued, maxQueuedBytes } = this.options;
    if (maxQueued !== undefined && q.ready.length >= maxQueued) {
      throw new KueuerError('KUEUER_ERR_QUEUE_FULL', `queue ${queue} already holds ${maxQueued} waiting requests (--max-queued)`);
    }
    if (maxQueuedBytes !== undefined && q.bytes + bytes > maxQueuedBytes) {
      throw new KueuerError('KUEUER_ERR_QUEUE_FULL', `queue ${queue} would hold over ${maxQueuedBytes} bytes of waiting requests (--max-queued-bytes)`);
    }
    q.push({ message, deliveries: 0, bytes });
  }

  withdrawRequest(queue: string, id: string): boolean {
    return this.queues.get(queue)?.withdraw(id) ?? false;
  }

  async openReplyInbox(queue: string, onReply: (message: WireMessage) => void): Promise<ReplyInbox> {
    this.assertOpen();
    const address = `${REPLY_ADDRESS_PREFIX}${queue}.${randomBytes(8).toString('hex')}`;
    this.inboxes.set(address, onReply);
    return {
      address,
      close: async () => {
        this.inboxes.delete(address);
      },
    };
  }

  async publishReply(replyTo: string, message: WireMessage): Promise<void> {
    this.assertOpen();
    if (!isReplyAddress(replyTo)) throw new KueuerError('KUEUER_ERR_ENVELOPE', `not a Kueuer reply inbox: ${JSON.stringify(replyTo.slice(0, 200))}`);
    const onReply = this.inboxes.get(replyTo);
    // Like a broker, delivery to the inbox is asynchronous; an unknown inbox drops it.
    if (onReply) setImmediate(() => onReply(message));
    // A reply address consumed as a queue (the responders' shared asynchronous results) gets it queued.
    else if (this.queues.get(replyTo)?.consumers.size) this.queues.get(replyTo)!.push({ message, deliveries: 0, bytes: weightOf(message) });
  }

  async consume(queue: string, options: ConsumeOptions, handler: DeliveryHandler): Promise<Consumer> {
    this.assertOpen();
    const q = this.queueNamed(queue);
    const consumer = new MemoryConsumer(q, options, handler, this.options.visibilityTimeoutMs);
    q.consumers.add(consumer);
    q.dispatch();
    return consumer;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const q of this.queues.values()) q.consumers.clear();
    this.inboxes.clear();
  }

  private queueNamed(name: string): MemoryQueue {
    let q = this.queues.get(name);
    if (!q) {
      q = new MemoryQueue();
      this.queues.set(name, q);
    }
    return q;
  }

  private assertOpen(): void {
    if (this.closed) throw new KueuerError('KUEUER_ERR_TRANSPORT_CLOSED', 'the memory transport is closed');
  }
}

/**
 * Test seam: what unit tests need to look inside the in-process broker or to
 * kill a consumer's "process". The product never calls these.
 */
export const memoryTestSeam = {
  /** Messages waiting to be taken. */
  depth(transport: MemoryTransport, queue: string): number {
    return queuesOf.get(transport)?.get(queue)?.ready.length ?? 0;
  },
  /** Bytes of the messages waiting to be taken. */
  bytes(transport: MemoryTransport, queue: string): number {
    return queuesOf.get(transport)?.get(queue)?.bytes ?? 0;
  },
  /**
   * Simulates the consumer's process dying mid-work: it takes nothing more,
   * acks nothing, and stops renewing leases, so its deliveries come back after
   * the visibility timeout.
   */
  crash(consumer: Consumer): void {
    if (!(consumer instanceof MemoryConsumer)) throw new TypeError('not a memory transport consumer');
    consumer.crash();
  },
};
