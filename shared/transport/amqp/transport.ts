/**
 * RabbitMQ backend on amqplib. Requests go to a durable queue as persistent
 * messages with publisher confirms; each responder replica reads replies from
 * its own exclusive queue, so no replica sees another's responses. Consumers
 * use prefetch = concurrency and ack only when the handler resolves.
 *
 * Reconnection uses amqplib's own recovery (backoff with jitter); this module
 * re-creates its channels, queues and consumers on every new connection.
 * A delivery is acked only on the channel it arrived on: after a reconnect the
 * broker has already requeued it, and acking its stale tag on a new channel
 * would close that channel with PRECONDITION_FAILED.
 */
import { randomBytes } from 'node:crypto';
import amqp from 'amqplib';
import type { Channel, ChannelModel, ConfirmChannel, ConsumeMessage, RecoveringChannelModel } from 'amqplib';
import type { Logger } from 'pino';
import type { WireMessage } from '../../envelope.js';
import { META } from '../../envelope.js';
import { KueuerError } from '../../errors.js';
import { amqpSocketOf, coalesceWrites } from './coalesce-writes.js';
import { closedChannels, confirmPublish, metaFromHeaders, redactUrl, returnedIds, track } from './channels.js';
import { amqpEndpoint, describeAmqpConnectFailure, type AmqpEndpoint } from '../../connect-errors.js';
import { reportFatal } from '../../fatal.js';
import {
  isReplyAddress,
  REPLY_ADDRESS_PREFIX,
  type ConsumeOptions,
  type Consumer,
  type DeliveryHandler,
  type PublishOptions,
  type ReplyInbox,
  type Transport,
} from '../transport.js';

class AmqpReplyInbox implements ReplyInbox {
  private channel: Channel | null = null;

  constructor(
    readonly address: string,
    private readonly onReply: (message: WireMessage) => void,
    private readonly transport: AmqpTransport,
  ) {}

  async attach(model: ChannelModel, log: Logger): Promise<void> {
    const channel = track(await model.createChannel(), log, 'reply-inbox');
    // Exclusive: the queue lives and dies with this replica's connection.
    await channel.assertQueue(this.address, { exclusive: true, autoDelete: true, durable: false });
    await channel.consume(
      this.address,
      (msg) => {
        if (msg) this.onReply({ meta: metaFromHeaders(msg.properties.headers), body: msg.content });
      },
      { noAck: true },
    );
    this.channel = channel;
  }

  async close(): Promise<void> {
    this.transport.forgetInbox(this);
    const channel = this.channel;
    this.channel = null;
    if (channel && !closedChannels.has(channel)) await channel.close().catch(() => undefined);
  }
}

class AmqpConsumer implements Consumer {
  private channel: Channel | null = null;
  private consumerTag: string | null = null;
  private running = 0;
  private stopping = false;
  private idleWaiters: Array<() => void> = [];

  constructor(
    private readonly queue: string,
    private readonly options: ConsumeOptions,
    private readonly handler: DeliveryHandler,
    private readonly transport: AmqpTransport,
    private readonly log: Logger,
  ) {}

  get inFlight(): number {
    return this.running;
  }

  async attach(model: ChannelModel): Promise<void> {
    if (this.stopping) return;
    const channel = track(await model.createChannel(), this.log, 'consumer');
    await channel.assertQueue(this.queue, { durable: true });
    await channel.prefetch(this.options.concurrency);
    const { consumerTag } = await channel.consume(this.queue, (msg) => {
      if (msg) this.run(channel, msg);
      else this.log.warn({ queue: this.queue }, 'amqp consumer cancelled by the broker; it resumes on reconnect');
    });
    this.channel = channel;
    this.consumerTag = consumerTag;
  }

  private run(channel: Channel, msg: ConsumeMessage): void {
    this.running++;
    this.handler({ message: { meta: metaFromHeaders(msg.properties.headers), body: msg.content }, redelivered: msg.fields.redelivered })
      .then(
        () => {
          if (!closedChannels.has(channel)) channel.ack(msg);
        },
        (err: unknown) => {
          this.log.warn({ err: (err as Error)?.message, reqId: msg.properties.headers?.[META.id] }, 'handler failed; requeueing');
          if (!closedChannels.has(channel)) channel.nack(msg, false, true);
        },
      )
      .finally(() => {
        this.running--;
        if (this.running === 0) for (const wake of this.idleWaiters.splice(0)) wake();
      });
  }

  async stop(): Promise<void> {
    this.stopping = true;
    const channel = this.channel;
    if (channel && this.consumerTag && !closedChannels.has(channel)) {
      await channel.cancel(this.consumerTag).catch(() => undefined);
    }
    if (this.running > 0) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    this.transport.forgetConsumer(this);
    if (channel && !closedChannels.has(channel)) await channel.close().catch(() => undefined);
  }
}

/** How long start-up waits for the first connection attempt's outcome before going on (retrying in the background). */
const FIRST_ATTEMPT_WAIT_MS = 3000;

/**
 * A reply's messageId, matched against the broker's returns on this process's
 * publisher: unique per process is all it needs, so a random prefix made once
 * and a counter, not 8 CSPRNG bytes per reply (3% of the sidecar's CPU).
 */
const REPLY_TOKEN_PREFIX = `${randomBytes(6).toString('hex')}.`;
let replyTokens = 0;
const nextReplyToken = (): string => `${REPLY_TOKEN_PREFIX}${(replyTokens++).toString(36)}`;

export class AmqpTransport implements Transport {
  readonly kind = 'amqp';
  private model: ChannelModel | null = null;
  private publisher: ConfirmChannel | null = null;
  private declared = new Set<string>();
  private readonly consumers = new Set<AmqpConsumer>();
  private readonly inboxes = new Set<AmqpReplyInbox>();
  private connection!: RecoveringChannelModel;

  private constructor(private readonly log: Logger) {}

  /**
   * Starts connecting and returns at once; until the broker answers,
   * isReady() is false and publishes fail fast with KUEUER_ERR_BROKER_UNAVAILABLE.
   */
  static async connect(url: string, log: Logger): Promise<AmqpTransport> {
    const transport = new AmqpTransport(log.child({ backend: 'amqp', url: redactUrl(url) }));
    transport.endpoint = amqpEndpoint(url);
    transport.connection = await amqp.connect(url, {
      noDelay: true, // without it, Nagle + delayed ack add ~40 ms per round trip
      recovery: {
        initialDelay: 100,
        maxDelay: 5_000,
        waitForConnect: false,
        setup: (model: ChannelModel) => transport.setUp(model),
      },
    });
    transport.watch();
    // A broker that answers and refuses (credentials, vhost) fails start-up; an unreachable one is retried in the background.
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, FIRST_ATTEMPT_WAIT_MS);
      function done(): void {
        clearTimeout(timer);
        transport.connection.off('connect', done).off('connect-failed', done);
        resolve();
      }
      transport.connection.once('connect', done).once('connect-failed', done);
    });
    if (transport.refusal) throw transport.refusal;
    return transport;
  }

  private endpoint!: AmqpEndpoint;
  /** Set when the broker refused the login or the vhost: retrying stopped. */
  private refusal: KueuerError | null = null;

  private onConnectFailed(err: Error): void {
    const { refused, reason, cause } = describeAmqpConnectFailure(err, this.endpoint);
    if (!refused) {
      this.log.warn({ host: this.endpoint.host, port: this.endpoint.port, cause, err: err.message }, `${reason}; retrying`);
      return;
    }
    this.refusal = new KueuerError('KUEUER_ERR_BROKER_REFUSED', reason, { cause: err });
    this.log.error(
      { host: this.endpoint.host, port: this.endpoint.port, vhost: this.endpoint.vhost, user: this.endpoint.user, err: err.message },
      `${reason}; not retrying`,
    );
    void this.connection.close().catch(() => undefined);
    reportFatal(this.refusal);
  }

  private watch(): void {
    const c = this.connection;
    c.on('connect', (model: ChannelModel) => {
      this.model = model;
      this.log.info('connected to broker');
    });
    c.on('disconnect', (err: Error) => {
      this.model = null;
      this.publisher = null;
      this.log.warn({ err: err?.message }, 'lost broker connection; reconnecting');
    });
    c.on('connect-failed', (err: Error) => this.onConnectFailed(err));
    c.on('error', (err: Error) => this.log.warn({ err: err.message }, 'broker connection error'));
    c.on('blocked', (reason: string) => this.log.warn({ reason }, 'broker blocked publishing'));
  }

  /** Runs on every new connection, before it is reported as connected. */
  private async setUp(model: ChannelModel): Promise<void> {
    const socket = amqpSocketOf(model);
    if (socket) coalesceWrites(socket);
    else this.log.warn('amqplib internals changed: frames are written one syscall each');
    this.declared = new Set();
    this.publisher = await this.openPublisher(model);
    for (const inbox of this.inboxes) await inbox.attach(model, this.log);
    for (const consumer of this.consumers) await consumer.attach(model);
  }

  /** The confirm channel requests and replies go out on; it notes the message ids the broker returns. */
  private async openPublisher(model: ChannelModel): Promise<ConfirmChannel> {
    const channel = track(await model.createConfirmChannel(), this.log, 'publisher');
    const returned = new Set<string>();
    returnedIds.set(channel, returned);
    channel.on('return', (msg) => {
      if (typeof msg.properties.messageId === 'string') returned.add(msg.properties.messageId);
    });
    return channel;
  }

  isReady(): boolean {
    return this.model !== null && this.publisher !== null && !closedChannels.has(this.publisher);
  }

  private async usablePublisher(): Promise<ConfirmChannel> {
    if (this.model && (!this.publisher || closedChannels.has(this.publisher))) {
      // A channel-level error closed it while the connection lives on.
      this.publisher = await this.openPublisher(this.model);
      this.declared = new Set();
    }
    if (!this.isReady() || !this.publisher) {
      throw new KueuerError('KUEUER_ERR_BROKER_UNAVAILABLE', 'not connected to the broker');
    }
    return this.publisher;
  }

  async publishRequest(queue: string, message: WireMessage, options: PublishOptions): Promise<void> {
    const channel = await this.usablePublisher();
    if (!this.declared.has(queue)) {
      await channel.assertQueue(queue, { durable: true });
      this.declared.add(queue);
    }
    const deadline = Number(message.meta[META.deadline]);
    const ttl = Number.isFinite(deadline) ? Math.max(1, deadline - Date.now()) : undefined;
    await confirmPublish(
      channel,
      queue,
      message,
      {
        persistent: true,
        messageId: message.meta[META.id],
        timestamp: Math.floor(Date.now() / 1000),
        // The broker discards a request nobody waits for any more.
        ...(ttl !== undefined ? { expiration: String(ttl) } : {}),
      },
      options.timeoutMs,
    );
  }

  async publishReply(replyTo: string, message: WireMessage, options: PublishOptions): Promise<void> {
    // Only a responder's private inbox may be a reply destination: a crafted reply-to naming a
    // request queue would otherwise feed the reply back to the sidecars as a new request.
    if (!isReplyAddress(replyTo)) throw new KueuerError('KUEUER_ERR_ENVELOPE', `not a Kueuer reply inbox: ${JSON.stringify(replyTo.slice(0, 200))}`);
    const channel = await this.usablePublisher();
    // Mandatory: a reply whose inbox does not exist (its responder is reconnecting after a broker
    // restart, or gone) comes back, and the caller hears so instead of acking a request nobody got.
    const token = nextReplyToken();
    await confirmPublish(channel, replyTo, message, { persistent: false, mandatory: true, messageId: token }, options.timeoutMs);
    const returned = returnedIds.get(channel);
    if (returned?.delete(token)) {
      throw new KueuerError('KUEUER_ERR_REPLY_INBOX_GONE', `reply inbox ${replyTo} does not exist (its responder is reconnecting or gone)`);
    }
  }

  async openReplyInbox(queue: string, onReply: (message: WireMessage) => void): Promise<ReplyInbox> {
    const inbox = new AmqpReplyInbox(`${REPLY_ADDRESS_PREFIX}${queue}.${randomBytes(8).toString('hex')}`, onReply, this);
    this.inboxes.add(inbox);
    if (this.model) await inbox.attach(this.model, this.log);
    return inbox;
  }

  async consume(queue: string, options: ConsumeOptions, handler: DeliveryHandler): Promise<Consumer> {
    const consumer = new AmqpConsumer(queue, options, handler, this, this.log);
    this.consumers.add(consumer);
    if (this.model) await consumer.attach(this.model);
    return consumer;
  }

  forgetConsumer(consumer: AmqpConsumer): void {
    this.consumers.delete(consumer);
  }

  forgetInbox(inbox: AmqpReplyInbox): void {
    this.inboxes.delete(inbox);
  }

  async close(): Promise<void> {
    for (const inbox of [...this.inboxes]) await inbox.close();
    this.model = null;
    this.publisher = null;
    await this.connection.close().catch(() => undefined);
  }
}
