/**
 * RabbitMQ backend on amqplib. Requests go to a durable queue as persistent
 * messages with publisher confirms; each responder replica reads replies from
 * its own inbox queue (inbox.ts: a quorum queue that outlives a node, or an
 * exclusive one with classic queues), so no replica sees another's responses. Consumers
 * use prefetch = concurrency and ack only when the handler resolves.
 *
 * Reconnection uses amqplib's own recovery (backoff with jitter); this module
 * re-creates its channels, queues and consumers on every new connection. The
 * URL may name several nodes of a cluster (`host1,host2,host3`): a lost
 * connection or a failed attempt moves on to the next node. Requests are
 * published with `mandatory` and retried, within the publish timeout, when
 * the broker returns them (no queue) or the confirm is lost with the
 * connection; a copy published again after a lost confirm carries
 * x-kueuer-republished, so its consumer treats it as a redelivery.
 * A delivery is acked only on the channel it arrived on: after a reconnect the
 * broker has already requeued it, and acking its stale tag on a new channel
 * would close that channel with PRECONDITION_FAILED.
 */
import { randomBytes } from 'node:crypto';
import amqp from 'amqplib';
import type { ChannelModel, ConfirmChannel, RecoveringChannelModel } from 'amqplib';
import type { Logger } from 'pino';
import type { WireMessage } from '../../envelope.js';
import { META } from '../../envelope.js';
import { isKueuerError, KueuerError } from '../../errors.js';
import { amqpSocketOf, coalesceWrites } from './coalesce-writes.js';
import { closedChannels, confirmPublish, returnedIds, track } from './channels.js';
import { AmqpConsumer, REPUBLISHED_HEADER, type ConsumerHost } from './consumer.js';
import { AmqpReplyInbox } from './inbox.js';
import { publishCancellation } from './cancellations.js';
import { CancellationReaders } from './cancellation-readers.js';
import { declareDurableQueue, REPLY_INBOX_EXPIRES_MS, type QueueType } from './queues.js';
import { trustedCas } from './tls.js';
import { amqpHostUrls, connectTarget, redactRaw } from './url.js';
import { amqpEndpoint, describeAmqpConnectFailure, type AmqpEndpoint } from '../../connect-errors.js';
import { reportFatal } from '../../fatal.js';
import {
  isReplyAddress,
  REPLY_ADDRESS_PREFIX,
  type ConsumeOptions,
  type Consumer,
  type DeliveryHandler,
  type LostInbox,
  type PublishOptions,
  type ReplyInbox,
  type CancellationWatch,
  type Transport,
} from '../transport.js';
import { isDeadLetterQueue } from '../../queue-names.js';

/** The replacement under way for a publisher that nacked (replacePublisher): shared by all its failed publishes. */
const replacements = new WeakMap<ConfirmChannel, Promise<void>>();

/** How long a dead-lettered copy is kept: long enough to inspect it, bounded so a poison stream cannot fill the disks. */
const DEAD_LETTER_TTL_MS = 7 * 24 * 3600 * 1000;

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

export interface AmqpOptions {
  /** Type of the durable queues this transport declares (request and dead-letter queues). */
  queueType: QueueType;
  /** x-expires of the replicated reply inboxes (REPLY_INBOX_EXPIRES_MS unless given; tests make it short). */
  inboxExpiresMs?: number;
  /** amqps: PEM of a private CA trusted besides Node's own (tls.ts). */
  ca?: string;
}

/**
 * How long after losing a connection the transport still reports ready: a failover to another node
 * takes 0.1-1 s, and publishes made meanwhile wait for it (within their timeout) instead of the
 * responder answering 503 at once and /readyz flapping. Past it, a broker that stays away is reported.
 */
const RECONNECT_GRACE_MS = 3_000;

/**
 * How long one connection attempt may take, TCP connect and AMQP handshake together (RabbitMQ's own
 * handshake_timeout): a node that accepts the socket but never answers (a stuck broker, a balancer
 * holding the connection, a blackholed address) fails the attempt, and the next node is tried. Without
 * it an attempt waited forever and the other nodes of the URL were never tried.
 */
export const CONNECT_TIMEOUT_MS = 10_000;

/** How long close() waits for the broker (inbox deletion, close-ok) before dropping the connection. */
const CLOSE_TIMEOUT_MS = 5_000;

/** Poll interval of a publish that waits for the connection to come back. */
const RECONNECT_POLL_MS = 25;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export class AmqpTransport implements Transport, ConsumerHost {
  readonly kind = 'amqp';
  private model: ChannelModel | null = null;
  private publisher: ConfirmChannel | null = null;
  private declared = new Set<string>();
  private readonly consumers = new Set<AmqpConsumer>();
  private readonly inboxes = new Set<AmqpReplyInbox>();
  private readers!: CancellationReaders;
  private connection!: RecoveringChannelModel;
  private readonly hosts: string[];
  private hostIndex = 0;
  /** When the last connection was lost; null while connected or before the first connection. */
  private disconnectedAt: number | null = null;

  private constructor(
    url: string,
    private readonly log: Logger,
    readonly queueType: QueueType,
    readonly inboxExpiresMs: number,
  ) {
    this.hosts = amqpHostUrls(url);
    this.endpoint = amqpEndpoint(this.hosts[0]!);
  }

  /**
   * Starts connecting and returns at once; until the broker answers,
   * isReady() is false and publishes fail fast with KUEUER_ERR_BROKER_UNAVAILABLE.
   */
  static async connect(url: string, log: Logger, options: AmqpOptions = { queueType: 'quorum' }): Promise<AmqpTransport> {
    const transport = new AmqpTransport(
      url,
      log.child({ backend: 'amqp', url: redactRaw(url) }),
      options.queueType,
      options.inboxExpiresMs ?? REPLY_INBOX_EXPIRES_MS,
    );
    // The object form, so the next attempt can go to another node: amqplib reads it on each attempt.
    const target = connectTarget(transport.hosts[0]!);
    transport.moveOn = () => {
      if (transport.hosts.length < 2) return;
      transport.hostIndex = (transport.hostIndex + 1) % transport.hosts.length;
      const next = transport.hosts[transport.hostIndex]!;
      Object.assign(target, connectTarget(next));
      transport.endpoint = amqpEndpoint(next);
    };
    transport.readers = new CancellationReaders(
      transport.hosts,
      transport.hostIndex,
      { timeout: CONNECT_TIMEOUT_MS, ...(options.ca !== undefined ? { ca: trustedCas(options.ca) } : {}) },
      transport.log,
    );
    transport.connection = await amqp.connect(target, {
      noDelay: true, // without it, Nagle + delayed ack add ~40 ms per round trip
      timeout: CONNECT_TIMEOUT_MS, // amqplib clears it once the connection is open
      ...(options.ca !== undefined ? { ca: trustedCas(options.ca) } : {}),
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

  private endpoint: AmqpEndpoint;
  /** Points the next connection attempt at the next node of the URL (none with one host). */
  private moveOn: () => void = () => undefined;
  /** Set when the broker refused the login or the vhost: retrying stopped. */
  private refusal: KueuerError | null = null;

  private onConnectFailed(err: Error): void {
    const { refused, reason, cause } = describeAmqpConnectFailure(err, this.endpoint);
    if (!refused) {
      this.log.warn({ host: this.endpoint.host, port: this.endpoint.port, cause, err: err.message }, `${reason}; retrying`);
      this.moveOn();
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
      this.disconnectedAt = null;
      this.log.info({ host: this.endpoint.host, port: this.endpoint.port }, 'connected to broker');
      for (const inbox of this.inboxes) inbox.reportLosses();
    });
    c.on('disconnect', (err: Error) => {
      this.model = null;
      this.disconnectedAt = Date.now();
      this.publisher = null;
      this.log.warn({ host: this.endpoint.host, port: this.endpoint.port, err: err?.message }, 'lost broker connection; reconnecting');
      this.moveOn();
    });
    c.on('connect-failed', (err: Error) => this.onConnectFailed(err));
    c.on('error', (err: Error) => this.log.warn({ err: err.message }, 'broker connection error'));
    c.on('blocked', (reason: string) => this.log.warn({ reason }, 'broker blocked publishing'));
  }

  /** Runs on every new connection, before it is reported as connected. */
  private async setUp(model: ChannelModel): Promise<void> {
    // amqplib's recovery listens for this connection's errors only once set-up is done: an error
    // before (the node dies now, or refuses a stream consume with a connection exception such as
    // "does not have a running local replica") had no listener, so it was thrown from the socket's
    // handler, killing the process or leaving recovery waiting forever. Heard here, set-up fails
    // and recovery tries the next node; after set-up recovery's own listener reports them.
    model.on('error', (err: Error) => {
      if (this.model !== model) this.log.warn({ err: err.message }, 'broker connection error while setting up; trying again');
    });
    const socket = amqpSocketOf(model);
    if (socket) coalesceWrites(socket);
    else this.log.warn('amqplib internals changed: frames are written one syscall each');
    this.declared = new Set();
    this.publisher = await this.openPublisher(model);
    for (const inbox of this.inboxes) await inbox.attachOrResume(model);
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

  /**
   * A publisher that nacked while it lives on gives way to a new channel: a channel's view of a quorum
   * queue (its leader) can stay stale after the leader's node is lost, nacking every publish on it
   * (RabbitMQ 3.10: a channel whose first publish to a quorum queue finds its leader's node down
   * keeps it as reject_publish; measured, every publish nacked 8 s after the new leader was elected,
   * while a new channel's was confirmed).
   */
  private replacePublisher(nacked: ConfirmChannel): Promise<void> {
    // One replacement per nacked channel: a burst of nacks on it (every reply in flight) opens one channel, not one each.
    let replacing = replacements.get(nacked);
    if (!replacing) {
      replacing = this.openReplacement(nacked).finally(() => {
        // Not replaced (no channel could be opened): a later nack tries again.
        if (this.publisher === nacked) replacements.delete(nacked);
      });
      replacements.set(nacked, replacing);
    }
    return replacing;
  }

  private async openReplacement(nacked: ConfirmChannel): Promise<void> {
    if (this.publisher !== nacked || closedChannels.has(nacked) || !this.model) return;
    const model = this.model;
    const fresh = await this.openPublisher(model).catch(() => undefined);
    if (!fresh) return;
    if (this.publisher !== nacked || this.model !== model) {
      // Superseded meanwhile (a reconnect opened its own publisher): this one is not needed.
      void fresh.close().catch(() => undefined);
      return;
    }
    this.publisher = fresh;
    void nacked.close().catch(() => undefined);
  }

  currentModel(): ChannelModel | null {
    return this.model;
  }

  outageMs(): number {
    return this.disconnectedAt === null ? 0 : Date.now() - this.disconnectedAt;
  }

  isReady(): boolean {
    return this.connected() || (this.disconnectedAt !== null && Date.now() - this.disconnectedAt < RECONNECT_GRACE_MS);
  }

  private connected(): boolean {
    return this.model !== null && this.publisher !== null && !closedChannels.has(this.publisher);
  }

  private async usablePublisher(): Promise<ConfirmChannel> {
    if (this.model && (!this.publisher || closedChannels.has(this.publisher))) {
      // A channel-level error closed it while the connection lives on.
      this.publisher = await this.openPublisher(this.model);
      this.declared = new Set();
    }
    if (!this.connected() || !this.publisher) {
      throw new KueuerError('KUEUER_ERR_BROKER_UNAVAILABLE', 'not connected to the broker');
    }
    return this.publisher;
  }

  /** The publisher, waiting until `giveUpAt` for a connection that is being re-established. */
  private async publisherBy(giveUpAt: number): Promise<ConfirmChannel> {
    for (;;) {
      try {
        return await this.usablePublisher();
      } catch (err) {
        if (Date.now() + RECONNECT_POLL_MS >= giveUpAt) throw err;
        await sleep(RECONNECT_POLL_MS);
      }
    }
  }

  private async declareOnce(queue: string): Promise<void> {
    if (this.declared.has(queue) || !this.model) return;
    await declareDurableQueue(this.model, queue, this.queueType, isDeadLetterQueue(queue) ? 'dead-letter' : 'request', this.log);
    this.declared.add(queue);
  }

  async publishRequest(queue: string, message: WireMessage, options: PublishOptions): Promise<void> {
    const giveUpAt = Date.now() + options.timeoutMs;
    const id = message.meta[META.id];
    const deadline = Number(message.meta[META.deadline]);
    let outgoing = message;
    for (;;) {
      const channel = await this.publisherBy(giveUpAt);
      try {
        await this.declareOnce(queue);
      } catch (err) {
        // A quorum queue electing a leader, a classic queue whose node is down: try again while the budget lasts.
        if (Date.now() + RECONNECT_POLL_MS >= giveUpAt) {
          throw new KueuerError('KUEUER_ERR_BROKER_UNAVAILABLE', `could not declare queue ${queue}: ${(err as Error).message}`, { cause: err });
        }
        await sleep(RECONNECT_POLL_MS);
        continue;
      }
      // A dead-lettered copy is kept for inspection past its request's deadline, for a week (a Kafka topic's default retention).
      const ttl = isDeadLetterQueue(queue) ? DEAD_LETTER_TTL_MS : Number.isFinite(deadline) ? Math.max(1, deadline - Date.now()) : undefined;
      try {
        await confirmPublish(
          channel,
          queue,
          outgoing,
          {
            persistent: true,
            // Mandatory: a request no queue takes comes back instead of being confirmed and dropped.
            mandatory: true,
            messageId: id,
            timestamp: Math.floor(Date.now() / 1000),
            // The broker discards a request nobody waits for any more.
            ...(ttl !== undefined ? { expiration: String(ttl) } : {}),
          },
          Math.max(1, giveUpAt - Date.now()),
        );
      } catch (err) {
        // Not confirmed: nacked, or its channel or connection went before the confirm. The broker may
        // still have it, so a copy sent again is flagged and its consumer tells the app it may be a rerun.
        if (isKueuerError(err, 'KUEUER_ERR_PUBLISH_TIMEOUT') || Date.now() + RECONNECT_POLL_MS >= giveUpAt) throw err;
        this.log.warn({ reqId: id, queue, err: (err as Error).message }, 'request not confirmed; publishing it again, flagged as a possible rerun');
        outgoing = { meta: { ...message.meta, [REPUBLISHED_HEADER]: '1' }, body: message.body };
        await this.replacePublisher(channel);
        await sleep(RECONNECT_POLL_MS);
        continue;
      }
      if (id === undefined || !returnedIds.get(channel)?.delete(id)) return;
      // Returned: the queue does not exist (deleted, or a classic queue on a node that is down). Declare it again.
      this.declared.delete(queue);
      if (Date.now() + RECONNECT_POLL_MS >= giveUpAt)
        throw new KueuerError('KUEUER_ERR_BROKER_UNAVAILABLE', `queue ${queue} did not take the request (returned as unroutable)`);
      this.log.warn({ reqId: id, queue }, 'request returned as unroutable; declaring its queue and publishing again');
      await sleep(RECONNECT_POLL_MS);
    }
  }

  async publishReply(replyTo: string, message: WireMessage, options: PublishOptions): Promise<void> {
    // Only a responder's private inbox may be a reply destination: a crafted reply-to naming a
    // request queue would otherwise feed the reply back to the sidecars as a new request.
    if (!isReplyAddress(replyTo)) throw new KueuerError('KUEUER_ERR_ENVELOPE', `not a Kueuer reply inbox: ${JSON.stringify(replyTo.slice(0, 200))}`);
    const channel = await this.usablePublisher();
    // Mandatory: a reply whose inbox does not exist (its responder is reconnecting after a broker
    // restart, or gone) comes back, and the caller hears so instead of acking a request nobody got.
    const token = nextReplyToken();
    try {
      await confirmPublish(channel, replyTo, message, { persistent: false, mandatory: true, messageId: token }, options.timeoutMs);
    } catch (err) {
      // Nacked or never confirmed: RabbitMQ 3.10 nacks every later publish of a channel to a quorum
      // inbox whose first came while that inbox's leader node was down. The caller retries on a new one.
      await this.replacePublisher(channel);
      throw err;
    }
    const returned = returnedIds.get(channel);
    if (returned?.delete(token)) {
      throw new KueuerError('KUEUER_ERR_REPLY_INBOX_GONE', `reply inbox ${replyTo} does not exist (its responder is reconnecting or gone)`);
    }
  }

  async openReplyInbox(queue: string, onReply: (message: WireMessage) => void, onLost?: (lost: LostInbox) => void): Promise<ReplyInbox> {
    const freshAddress = (): string => `${REPLY_ADDRESS_PREFIX}${queue}.${randomBytes(8).toString('hex')}`;
    const inbox = new AmqpReplyInbox(freshAddress(), onReply, this, this.log, { freshAddress, ...(onLost ? { onLost } : {}) });
    this.inboxes.add(inbox);
    if (this.model) await inbox.attach(this.model);
    return inbox;
  }

  async consume(queue: string, options: ConsumeOptions, handler: DeliveryHandler): Promise<Consumer> {
    const consumer = new AmqpConsumer(queue, options, handler, this, this.log);
    this.consumers.add(consumer);
    if (this.model) await consumer.attach(this.model);
    return consumer;
  }

  async cancelRequest(queue: string, id: string, deadline: number, options: PublishOptions): Promise<void> {
    const channel = await this.publisherBy(Date.now() + options.timeoutMs);
    await publishCancellation(this.model!, channel, this.declared, queue, id, deadline, options.timeoutMs);
  }

  watchCancellations(queue: string, onCancel: (id: string) => void, options: { capacity?: number } = {}): Promise<CancellationWatch> {
    return this.readers.watch(queue, onCancel, options.capacity);
  }

  forgetConsumer(consumer: AmqpConsumer): void {
    this.consumers.delete(consumer);
  }

  forgetInbox(inbox: AmqpReplyInbox): void {
    this.inboxes.delete(inbox);
  }

  async close(): Promise<void> {
    this.disconnectedAt = null;
    const model = this.model;
    const orderly = async (): Promise<void> => {
      await this.readers.close();
      for (const inbox of [...this.inboxes]) await inbox.close();
      this.model = null;
      this.publisher = null;
      await this.connection.close().catch(() => undefined);
    };
    // A broker that stopped answering (an alarm, a stalled network) never sends close-ok, and amqplib
    // waits for it: past CLOSE_TIMEOUT_MS the socket is dropped, so shutdown does not hang until SIGKILL.
    let timer: NodeJS.Timeout | undefined;
    const late = await Promise.race([
      orderly().then(() => false),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), CLOSE_TIMEOUT_MS))),
    ]);
    clearTimeout(timer);
    if (!late) return;
    this.log.warn(
      { host: this.endpoint.host, port: this.endpoint.port, timeoutMs: CLOSE_TIMEOUT_MS },
      'the broker did not answer the close; dropping the connection',
    );
    this.model = null;
    this.publisher = null;
    const socket = model ? amqpSocketOf(model) : null;
    socket?.destroy();
  }
}
