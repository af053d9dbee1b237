/**
 * Kafka backend on kafkajs. One topic per queue (`kueuer.<queue>`, created
 * with --kafka-partitions), one consumer group per queue, the request id as
 * the message key, envelope metadata in record headers and the raw body as
 * the value.
 *
 * Kafka has no per-message ack, so "ack" means committing offsets, and only
 * contiguous ones: with concurrency N a sidecar may finish offset 7 before 5,
 * but the group's offset only moves past 5 once 5 is done, so a crash never
 * skips an unfinished request (finished ones after it may be redelivered).
 * While requests run, the consumer heartbeats, so a long request does not
 * cost a rebalance. `at-most-once` commits a request's offset before calling
 * the app instead; `transactional` commits it in one Kafka transaction with
 * the request's reply (kafka-transactions.ts).
 *
 * Replies: each responder replica creates its own single-partition topic
 * `kueuer.reply.<queue>.<random>` and reads it alone; it deletes it on close,
 * and topics left by replicas that died are swept (see docs/kafka.md).
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import net from 'node:net';
import tls from 'node:tls';
import { Kafka, logLevel, type Admin, type ISocketFactory, type Consumer as KafkaConsumer, type EachBatchPayload, type IHeaders, type KafkaMessage, type Producer } from 'kafkajs';
import type { Logger } from 'pino';
import type { WireMessage } from '../envelope.js';
import { META } from '../envelope.js';
import { KueuerError } from '../errors.js';
import { describeNetworkCause } from '../connect-errors.js';
import { formatHostPort } from '../options.js';
import { computeLag, kafkaAuth, type KafkaSpec } from './kafka-config.js';
import { groupByTopic, replyCapture, TRANSACTION_TIMEOUT_MS, TransactionalCommits, type OutgoingRecord } from './kafka-transactions.js';
import type { ConsumeOptions, Consumer, DeliveryHandler, PublishOptions, ReplyInbox, Transport } from './transport.js';

export const KAFKA_DELIVERIES = ['at-least-once', 'at-most-once', 'transactional'] as const;
export type KafkaDelivery = (typeof KAFKA_DELIVERIES)[number];

export interface KafkaTransportOptions {
  partitions: number;
  delivery: KafkaDelivery;
  /**
   * transactional only: the producer's transactional id, unique per sidecar
   * and stable across its restarts (a restarted sidecar then aborts the
   * transaction its predecessor left open). Default `kueuer.<queue>.<hostname>`.
   */
  transactionalId?: string;
}

export const requestTopic = (queue: string): string => `kueuer.${queue}`;
export const consumerGroup = (queue: string): string => `kueuer.${queue}`;
const REPLY_PREFIX = 'kueuer.reply.';
/** Topics Kueuer creates accept records up to 101 MiB: the largest --max-body / --max-response plus headers (Kafka's default is 1 MiB). */
const MAX_MESSAGE_BYTES = 101 * 1024 * 1024;

function metaFromHeaders(headers: IHeaders | undefined): Record<string, string> {
  const meta: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers ?? {})) {
    if (v === undefined) continue;
    const value = Array.isArray(v) ? v[0] : v;
    if (value !== undefined) meta[k] = value.toString();
  }
  return meta;
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new KueuerError('KUEUER_ERR_PUBLISH_TIMEOUT', `${what} not confirmed within ${ms} ms`)), ms);
    }),
  ]);
}

interface Queued extends OutgoingRecord {
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * Sends the records published within one tick in one request (kafkajs has
 * no linger of its own): each publish waits only for the tick, and a busy
 * responder or sidecar sends one produce request per tick instead of one per
 * record.
 */
class TickBatcher {
  private queued: Queued[] = [];
  private scheduled = false;

  constructor(private readonly producer: Producer) {}

  send(topic: string, message: Queued['message']): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queued.push({ topic, message, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    const batch = this.queued;
    this.queued = [];
    this.producer
      .sendBatch({ acks: -1, topicMessages: groupByTopic(batch) })
      .then(
        () => batch.forEach((q) => q.resolve()),
        (err: unknown) => batch.forEach((q) => q.reject(err)),
      );
  }
}

/** A Kafka record of an envelope: the request id as key, metadata as headers, the raw body as value. */
function recordOf(message: WireMessage): OutgoingRecord['message'] {
  return { key: message.meta[META.id] ?? null, value: message.body, headers: message.meta };
}

/** kafkajs's own sockets leave Nagle on; like AMQP's, ours set noDelay (one request at a time went from ~7 ms to ~2 ms). */
const noDelaySocket: ISocketFactory = ({ host, port, ssl, onConnect }) => {
  const socket = ssl
    ? tls.connect({ ...(ssl as tls.ConnectionOptions), host, port, servername: (ssl as tls.ConnectionOptions).servername ?? host }, onConnect)
    : net.connect({ host, port }, onConnect);
  socket.setNoDelay(true);
  socket.setKeepAlive(true, 60_000);
  return socket;
};

/**
 * A counting semaphore: the sidecar's concurrency across all its partitions.
 * It also drives backpressure with hysteresis: `onFull` when the last slot is
 * taken while records still wait for one, `onRoomAgain` once half the slots
 * are free again (not at the first free slot, which paused and resumed
 * fetching on nearly every request and halved throughput).
 */
export class Slots {
  private free: number;
  private waiters: Array<() => void> = [];
  private full = false;
  constructor(
    private readonly size: number,
    private readonly onFull: () => void = () => undefined,
    private readonly onRoomAgain: () => void = () => undefined,
  ) {
    this.free = size;
  }
  async acquire(): Promise<void> {
    if (this.free > 0) {
      this.free--;
      return;
    }
    if (!this.full) {
      this.full = true;
      this.onFull();
    }
    await new Promise<void>((r) => this.waiters.push(r));
  }
  release(): void {
    const next = this.waiters.shift();
    if (next) {
      next();
      return;
    }
    this.free++;
    if (this.full && this.free >= Math.ceil(this.size / 2)) {
      this.full = false;
      this.onRoomAgain();
    }
  }
}

/**
 * Per partition: which offsets are done, and the lowest one not yet done.
 * `complete` returns the new commit position when it moved.
 */
export class ContiguousOffsets {
  private readonly done = new Set<bigint>();
  /** One past the highest offset dispatched. */
  private fetched: bigint;
  constructor(private next: bigint) {
    this.fetched = next;
  }

  /** The lowest offset not yet done: the position to commit. */
  get position(): bigint {
    return this.next;
  }

  /**
   * Records that `offset` was handed out. Offsets skipped over (none on a
   * request topic, but a fetch may start past records that no longer exist)
   * count as done, so the position can pass them once what precedes is done.
   */
  dispatched(offset: bigint): void {
    if (offset < this.fetched) return; // fetched again after a rebalance: already tracked
    if (this.next === this.fetched) this.next = offset; // nothing pending: jump the gap
    else for (let o = this.fetched; o < offset; o++) this.done.add(o);
    this.fetched = offset + 1n;
  }

  complete(offset: bigint): bigint | null {
    if (offset < this.next) return null; // a redelivered copy of something already past
    this.done.add(offset);
    if (offset !== this.next) return null;
    while (this.done.has(this.next)) {
      this.done.delete(this.next);
      this.next++;
    }
    return this.next;
  }
}

class KafkaRequestConsumer implements Consumer {
  private running = 0;
  stopping = false;
  /** Settles once the consumer has joined (or given up because it was stopped). */
  starting: Promise<void> = Promise.resolve();
  private readonly slots: Slots;
  private readonly toCommit = new Map<number, bigint>();
  private committing: Promise<void> | null = null;
  /** Per partition: finished offsets and the commit position. */
  private readonly partitions = new Map<number, ContiguousOffsets>();
  private readonly inFlightWork = new Set<Promise<void>>();
  private paused = false;
  /** Trackers of partitions this member lost in a rebalance: their late completions commit nothing. */
  private readonly abandoned = new WeakSet<ContiguousOffsets>();

  constructor(
    private readonly consumer: KafkaConsumer,
    private readonly topic: string,
    private readonly options: ConsumeOptions,
    private readonly delivery: KafkaDelivery,
    private readonly handler: DeliveryHandler,
    private readonly log: Logger,
    /** transactional only: where finished requests' replies and positions go. */
    private readonly transactions: TransactionalCommits | null = null,
  ) {
    this.slots = new Slots(
      options.concurrency,
      () => this.setPaused(true),
      () => this.setPaused(false),
    );
  }

  /**
   * After a rebalance: partitions this member no longer owns are abandoned.
   * Their running requests finish, but commit nothing (in transactional mode
   * their replies are dropped too); the new owner runs them from the
   * committed offset. kafkajs has no revoke callback to wait on, so this
   * happens once the new assignment is known.
   */
  assigned(partitions: number[]): void {
    for (const [partition, tracker] of this.partitions) {
      if (partitions.includes(partition)) continue;
      this.abandoned.add(tracker);
      this.partitions.delete(partition);
      this.toCommit.delete(partition);
      this.log.info({ partition }, 'partition revoked; its unfinished requests go to the new owner');
    }
  }

  /** Backpressure: stop fetching the topic while every slot is taken, so records do not pile up in memory. */
  private setPaused(paused: boolean): void {
    if (paused === this.paused) return;
    this.paused = paused;
    try {
      if (paused) this.consumer.pause([{ topic: this.topic }]);
      else this.consumer.resume([{ topic: this.topic }]);
    } catch (err) {
      // Not running yet or already stopped: nothing is being fetched either way.
      this.log.debug({ err: (err as Error).message }, 'cannot change pause state');
    }
  }

  get inFlight(): number {
    return this.running;
  }

  async start(): Promise<void> {
    await this.consumer.subscribe({ topic: this.topic, fromBeginning: true });
    await this.consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: Math.max(1, this.options.concurrency),
      eachBatch: (payload) => this.batch(payload),
    });
  }

  /**
   * Commits coalesce: positions are recorded per partition and one commit
   * request at a time carries the newest of each, so a busy sidecar sends a
   * commit per round trip, not per request, and positions only move forward.
   */
  private commit(partition: number, offset: bigint): Promise<void> {
    const current = this.toCommit.get(partition);
    if (current === undefined || offset > current) this.toCommit.set(partition, offset);
    if (!this.committing) {
      this.committing = (async () => {
        while (this.toCommit.size > 0) {
          const batch = [...this.toCommit.entries()];
          this.toCommit.clear();
          await this.consumer
            .commitOffsets(batch.map(([p, o]) => ({ topic: this.topic, partition: p, offset: o.toString() })))
            .catch((err: Error) => this.log.warn({ err: err.message }, 'offset commit failed; those requests may be redelivered'));
        }
        this.committing = null;
      })();
    }
    return this.committing;
  }

  /** Resolves once every recorded position has been sent. */
  private async flushCommits(): Promise<void> {
    while (this.committing) await this.committing;
  }

  /**
   * Dispatches a batch's records as slots free up and returns once all are
   * dispatched, not done: kafkajs fetches the next batch while requests run,
   * so a partition is not serialized batch by batch. The fetch position moves
   * with dispatching (resolveOffset); the committed position moves only past
   * contiguous finished offsets.
   */
  private async batch({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> {
    const first = batch.messages[0];
    if (!first) return;
    const partition = batch.partition;
    let offsets = this.partitions.get(partition);
    if (!offsets) {
      // First sight of this partition since it was assigned to us (lost partitions are dropped in assigned()).
      // A later batch starts past requests still running, so it must not start a new tracker: that would
      // commit past them (a SIGKILL then loses them; the fault matrix caught exactly that).
      offsets = new ContiguousOffsets(BigInt(first.offset));
      this.partitions.set(partition, offsets);
    }
    const tracker = offsets;
    // Heartbeat while waiting for a free slot, so a slow app does not trigger a rebalance.
    const beat = setInterval(() => void heartbeat().catch(() => undefined), 3000);
    try {
      for (const message of batch.messages) {
        if (this.stopping || !isRunning() || isStale()) break;
        await this.slots.acquire();
        if (this.stopping || !isRunning() || isStale()) {
          this.slots.release();
          break;
        }
        const offset = BigInt(message.offset);
        tracker.dispatched(offset);
        if (this.delivery === 'at-most-once') {
          // Never run twice: the request is committed before the app sees it.
          await this.commit(partition, offset + 1n);
        }
        this.running++;
        const work = this.process(message)
          .then((replies) => {
            if (this.abandoned.has(tracker)) return;
            const next = tracker.complete(offset);
            if (this.transactions) this.transactions.finished(partition, tracker, offset, replies, next);
            else if (next !== null && this.delivery === 'at-least-once') void this.commit(partition, next);
          })
          .finally(() => {
            this.running--;
            this.slots.release();
            this.inFlightWork.delete(work);
          });
        this.inFlightWork.add(work);
        resolveOffset(message.offset);
      }
    } finally {
      clearInterval(beat);
    }
  }

  /**
   * Runs the handler; a failure (the reply could not be published) is retried
   * until the request's deadline. In transactional mode the replies it
   * published are captured and returned, to be sent with the offset commit.
   */
  private async process(message: KafkaMessage): Promise<OutgoingRecord[]> {
    const delivery = { message: { meta: metaFromHeaders(message.headers), body: message.value ?? Buffer.alloc(0) }, redelivered: false };
    const deadline = Number(delivery.message.meta[META.deadline] ?? 0);
    for (let attempt = 1; ; attempt++) {
      const replies: OutgoingRecord[] = [];
      try {
        if (this.transactions) await replyCapture.run(replies, () => this.handler(delivery));
        else await this.handler(delivery);
        return replies;
      } catch (err) {
        if (Date.now() >= deadline || this.stopping) {
          this.log.warn({ err: (err as Error).message, reqId: delivery.message.meta[META.id] }, 'giving up on a request past its deadline');
          return [];
        }
        await new Promise((r) => setTimeout(r, Math.min(1000, 50 * 2 ** attempt)));
      }
    }
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.starting;
    // No new records; then the requests already taken finish and are committed.
    await this.consumer.stop();
    await Promise.all([...this.inFlightWork]);
    await this.flushCommits();
    await this.transactions?.close();
    await this.consumer.disconnect();
  }
}

export class KafkaTransport implements Transport {
  readonly kind = 'kafka';
  private readonly kafka: Kafka;
  private readonly producer: Producer;
  private readonly admin: Admin;
  private readonly batcher: TickBatcher;
  private connected = false;
  private readonly topics = new Map<string, Promise<void>>();
  /** This process's reply topics, and whether each is ready to receive. */
  private readonly inboxes = new Map<string, boolean>();
  private sweepTimer: NodeJS.Timeout | undefined;
  /** Reply topics of other replicas seen without members, and since when. */
  private emptySince = new Map<string, number>();

  private constructor(
    spec: KafkaSpec,
    private readonly options: KafkaTransportOptions,
    private readonly log: Logger,
  ) {
    const auth = kafkaAuth(spec, process.env);
    this.kafka = new Kafka({
      clientId: `kueuer-${randomBytes(4).toString('hex')}`,
      brokers: spec.brokers,
      ...(auth.ssl ? { ssl: auth.ssl } : {}),
      ...(auth.sasl ? { sasl: auth.sasl as never } : {}),
      logLevel: logLevel.NOTHING,
      retry: { initialRetryTime: 100, retries: 8 },
      socketFactory: (args) => this.watchSocket(noDelaySocket(args), args.host, args.port),
    });
    // Not idempotent: kafkajs serializes an idempotent producer's requests per
    // partition, which capped a reply topic at a few hundred records/s. A
    // retried send can then duplicate a record: a duplicate request runs twice
    // (at-least-once anyway), and a duplicate reply is dropped by the responder.
    this.producer = this.kafka.producer({ allowAutoTopicCreation: false });
    this.batcher = new TickBatcher(this.producer);
    this.admin = this.kafka.admin();
    this.producer.on('producer.connect', () => {
      this.connected = true;
      log.info('connected to Kafka');
    });
    this.producer.on('producer.disconnect', () => {
      this.connected = false;
      log.warn('disconnected from Kafka');
    });
  }

  /** Brokers whose last connection attempt failed, with the cause: logged when it first fails or the cause changes. */
  private readonly unreachable = new Map<string, string>();

  /** Names host, port and cause as soon as a socket to a broker fails (kafkajs only reports after its retries). */
  private watchSocket<S extends net.Socket>(socket: S, host: string, port: number): S {
    const key = formatHostPort({ host, port });
    socket.once(socket instanceof tls.TLSSocket ? 'secureConnect' : 'connect', () => this.unreachable.delete(key));
    socket.once('error', (err: Error) => {
      const cause = describeNetworkCause(err);
      if (this.unreachable.get(key) === cause) return;
      this.unreachable.set(key, cause);
      this.log.warn({ host, port, cause }, `cannot reach Kafka broker ${key}: ${cause}; retrying`);
    });
    return socket;
  }

  /** Starts connecting and returns at once; until connected, publishes fail fast. */
  static async connect(spec: KafkaSpec, options: KafkaTransportOptions, log: Logger): Promise<KafkaTransport> {
    const transport = new KafkaTransport(spec, options, log.child({ backend: 'kafka', brokers: spec.brokers.join(',') }));
    void transport.connectLoop();
    return transport;
  }

  private async connectLoop(): Promise<void> {
    for (let attempt = 0; !this.connected; attempt++) {
      try {
        await this.admin.connect();
        await this.producer.connect();
        return;
      } catch (err) {
        const causes = [...this.unreachable].map(([broker, cause]) => `${broker}: ${cause}`);
        this.log.warn({ err: (err as Error).message }, `cannot reach Kafka${causes.length ? ` (${causes.join('; ')})` : ''}; retrying`);
        await new Promise((r) => setTimeout(r, Math.min(5000, 200 * 2 ** attempt)));
      }
    }
  }

  isReady(): boolean {
    if (!this.connected) return false;
    for (const ready of this.inboxes.values()) if (!ready) return false;
    return true;
  }

  /** Creates the topic once; concurrent callers share one attempt. */
  private ensureTopic(topic: string, partitions: number): Promise<void> {
    let creating = this.topics.get(topic);
    if (!creating) {
      creating = this.createTopic(topic, partitions);
      this.topics.set(topic, creating);
      creating.catch(() => this.topics.delete(topic));
    }
    return creating;
  }

  private async createTopic(topic: string, partitions: number): Promise<void> {
    try {
      await this.admin.createTopics({
        topics: [{ topic, numPartitions: partitions, configEntries: [{ name: 'max.message.bytes', value: String(MAX_MESSAGE_BYTES) }] }],
        waitForLeaders: true,
      });
    } catch (err) {
      const type = (err as { type?: string }).type ?? '';
      if (type === 'TOPIC_AUTHORIZATION_FAILED' || type === 'CLUSTER_AUTHORIZATION_FAILED') {
        throw new KueuerError('KUEUER_ERR_BROKER_UNAVAILABLE', `not allowed to create Kafka topic ${topic}: create it beforehand (see docs/kafka.md) or grant CREATE on it`);
      }
      if (type !== 'TOPIC_ALREADY_EXISTS') throw err;
    }
  }

  async publishRequest(queue: string, message: WireMessage, options: PublishOptions): Promise<void> {
    if (!this.connected) throw new KueuerError('KUEUER_ERR_BROKER_UNAVAILABLE', 'not connected to Kafka');
    const topic = requestTopic(queue);
    await withTimeout(
      (async () => {
        await this.ensureTopic(topic, this.options.partitions);
        await this.batcher.send(topic, recordOf(message));
      })(),
      options.timeoutMs,
      'request',
    );
  }

  async publishReply(replyTo: string, message: WireMessage, options: PublishOptions): Promise<void> {
    if (!replyTo.startsWith(REPLY_PREFIX)) throw new KueuerError('KUEUER_ERR_ENVELOPE', `not a Kueuer reply topic: ${replyTo}`);
    const capture = replyCapture.getStore();
    if (capture) {
      // transactional: sent with the request's offset commit, in one transaction.
      capture.push({ topic: replyTo, message: recordOf(message) });
      return;
    }
    if (!this.connected) throw new KueuerError('KUEUER_ERR_BROKER_UNAVAILABLE', 'not connected to Kafka');
    await withTimeout(
      this.batcher.send(replyTo, recordOf(message)),
      options.timeoutMs,
      'reply',
    );
  }

  /**
   * Returns at once with the inbox's address; its topic and consumer are set
   * up as soon as Kafka answers. Until then isReady() is false, so no request
   * naming this inbox is published before the topic exists.
   */
  async openReplyInbox(queue: string, onReply: (message: WireMessage) => void): Promise<ReplyInbox> {
    const topic = `${REPLY_PREFIX}${queue}.${randomBytes(8).toString('hex')}`;
    this.inboxes.set(topic, false);
    let closed = false;
    // Its own group, which only this replica ever joins: the sweep recognizes abandoned inboxes by their empty group.
    const consumer = this.kafka.consumer({ groupId: topic, maxWaitTimeInMs: 5, sessionTimeout: 30_000, heartbeatInterval: 3000 });
    const setUp = (async () => {
      for (let attempt = 0; !closed; attempt++) {
        try {
          await this.waitConnected();
          await this.ensureTopic(topic, 1);
          await consumer.connect();
          await consumer.subscribe({ topic, fromBeginning: true });
          await consumer.run({
            // The topic is this replica's alone and lives as long as it does: no offsets worth committing.
            autoCommit: false,
            eachMessage: async ({ message }) => onReply({ meta: metaFromHeaders(message.headers), body: message.value ?? Buffer.alloc(0) }),
          });
          if (!closed) this.inboxes.set(topic, true);
          this.scheduleSweep();
          return;
        } catch (err) {
          this.log.warn({ err: (err as Error).message, topic }, 'cannot set up the reply inbox yet; retrying');
          await new Promise((r) => setTimeout(r, Math.min(5000, 200 * 2 ** attempt)));
        }
      }
    })();
    return {
      address: topic,
      close: async () => {
        closed = true;
        this.inboxes.delete(topic);
        await setUp;
        await consumer.disconnect().catch(() => undefined);
        if (this.connected) {
          await this.admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
          await this.admin.deleteGroups([topic]).catch(() => undefined);
        }
      },
    };
  }

  /**
   * Deletes reply topics whose group has had no member for `graceMs` (seen
   * empty in sweeps at least that far apart): their responder died without
   * cleaning up. A replica's topic is briefly memberless while it starts, which
   * the grace covers. `only` narrows the sweep to some topics.
   */
  async sweepAbandonedInboxes(graceMs = 60_000, only: (topic: string) => boolean = () => true): Promise<string[]> {
    const candidates = (await this.admin.listTopics()).filter((t) => t.startsWith(REPLY_PREFIX) && !this.inboxes.has(t) && only(t));
    if (candidates.length === 0) return [];
    const { groups } = await this.admin.describeGroups(candidates);
    const empty = new Set(groups.filter((g) => g.members.length === 0).map((g) => g.groupId));
    const now = Date.now();
    const doomed = candidates.filter((t) => empty.has(t) && this.emptySince.has(t) && now - this.emptySince.get(t)! >= graceMs);
    this.emptySince = new Map(candidates.filter((t) => empty.has(t)).map((t) => [t, this.emptySince.get(t) ?? now]));
    if (doomed.length > 0) {
      await this.admin.deleteTopics({ topics: doomed });
      await this.admin.deleteGroups(doomed).catch(() => undefined);
      this.log.info({ topics: doomed }, 'deleted reply topics abandoned by responders that died');
    }
    return doomed;
  }

  private scheduleSweep(): void {
    if (this.sweepTimer) return;
    this.sweepTimer = setInterval(() => void this.sweepAbandonedInboxes().catch(() => undefined), 60_000);
    this.sweepTimer.unref();
  }

  /** Returns at once; the consumer joins its group as soon as Kafka answers, and keeps trying until then. */
  async consume(queue: string, options: ConsumeOptions, handler: DeliveryHandler): Promise<Consumer> {
    const topic = requestTopic(queue);
    const consumer = this.kafka.consumer({
      groupId: consumerGroup(queue),
      // Short, since the consumer heartbeats while requests run: a dead sidecar's partitions move on within 10 s.
      sessionTimeout: 10_000,
      heartbeatInterval: 3000,
      rebalanceTimeout: 60_000,
      maxWaitTimeInMs: 5,
      allowAutoTopicCreation: false,
    });
    const log = this.log.child({ queue });
    // Set below; the event can only fire once the worker runs.
    let onAssigned: (partitions: number[]) => void = () => undefined;
    consumer.on(consumer.events.GROUP_JOIN, (e) => {
      const partitions = e.payload.memberAssignment[topic] ?? [];
      log.info({ memberId: e.payload.memberId, partitions }, 'joined the consumer group');
      onAssigned(partitions);
    });
    let txProducer: Producer | null = null;
    let transactions: TransactionalCommits | null = null;
    if (this.options.delivery === 'transactional') {
      const transactionalId = this.options.transactionalId ?? `kueuer.${queue}.${hostname()}`;
      txProducer = this.kafka.producer({
        transactionalId,
        idempotent: true,
        maxInFlightRequests: 1,
        transactionTimeout: TRANSACTION_TIMEOUT_MS,
        allowAutoTopicCreation: false,
        // The broker answers CONCURRENT_TRANSACTIONS while it writes the previous transaction's markers: retry soon.
        retry: { initialRetryTime: 10, retries: 20 },
      });
      transactions = new TransactionalCommits(txProducer, consumerGroup(queue), topic, log.child({ transactionalId }));
    }
    const worker = new KafkaRequestConsumer(consumer, topic, options, this.options.delivery, handler, log, transactions);
    onAssigned = (partitions) => worker.assigned(partitions);
    const producer = txProducer;
    worker.starting = (async () => {
      for (let attempt = 0; !worker.stopping; attempt++) {
        try {
          await this.waitConnected();
          await this.ensureTopic(topic, this.options.partitions);
          // Connecting a transactional producer aborts whatever its predecessor with the same id left open.
          if (producer) await producer.connect();
          await consumer.connect();
          await worker.start();
          return;
        } catch (err) {
          this.log.warn({ err: (err as Error).message, topic }, 'cannot start consuming yet; retrying');
          await new Promise((r) => setTimeout(r, Math.min(5000, 200 * 2 ** attempt)));
        }
      }
    })();
    return worker;
  }

  /** KEDA-style lag of a queue: latest minus committed offset, summed over partitions. */
  async lag(queue: string): Promise<number> {
    return (await this.lagOf(queue)).lag;
  }

  /** Lag and partition count of a queue in one read, or undefined while its topic does not exist (the autoscaler's poll). */
  async queueDepth(queue: string): Promise<{ lag: number; partitions: number } | undefined> {
    // Asking for offsets of a missing topic only fails after kafkajs's retries; the topic list answers at once.
    if (!(await this.admin.listTopics()).includes(requestTopic(queue))) return undefined;
    return this.lagOf(queue);
  }

  private async lagOf(queue: string): Promise<{ lag: number; partitions: number }> {
    const topic = requestTopic(queue);
    const latest = await this.admin.fetchTopicOffsets(topic);
    const [committed] = await this.admin.fetchOffsets({ groupId: consumerGroup(queue), topics: [topic] });
    const lag = computeLag(
      latest.map((p) => ({ partition: p.partition, offset: p.high, low: p.low })),
      committed?.partitions ?? [],
    );
    return { lag, partitions: latest.length };
  }

  private async waitConnected(): Promise<void> {
    for (let i = 0; i < 50 && !this.connected; i++) await new Promise((r) => setTimeout(r, 100));
    if (!this.connected) throw new KueuerError('KUEUER_ERR_BROKER_UNAVAILABLE', 'not connected to Kafka');
  }

  async close(): Promise<void> {
    clearInterval(this.sweepTimer);
    await this.producer.disconnect().catch(() => undefined);
    await this.admin.disconnect().catch(() => undefined);
  }
}
