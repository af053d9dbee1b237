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
 * the request's reply (transactions.ts). The pieces: client.ts (the kafkajs
 * client), request-consumer.ts (with offsets.ts, slots.ts), tick-batcher.ts,
 * records.ts; the autoscaler reads lag with depth.ts, not with this class.
 *
 * Replies: each responder replica creates its own single-partition topic
 * `kueuer.reply.<queue>.<random>` and reads it alone; it deletes it on close,
 * and topics left by replicas that died are swept (see docs/kafka.md).
 *
 * Asynchronous results (responder/async/results.ts): consuming a reply
 * address reads the queue's results topic `kueuer.reply.<queue>.async`, one
 * partition, replicated as request topics are, by every responder replica of
 * the queue as one consumer group; its offset moves only past results stored,
 * and a handler that fails is called again until the consumer stops. The
 * sweeper never touches it: it deletes only inbox topics.
 *
 * Cancels of asynchronous requests (cancellations.ts): appended to the queue's cancellation topic
 * `kueuer.reply.<queue>.cancel`, which every sidecar of the queue reads alone.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { PartitionAssigners, type Admin, type Kafka, type Producer } from 'kafkajs';
import type { Logger } from 'pino';
import { META, type WireMessage } from '../../envelope.js';
import { KueuerError } from '../../errors.js';
import { retry, type RetryOptions } from '../../retry.js';
import type { KafkaDelivery } from '../backend.js';
import {
  isReplyAddress,
  REPLY_ADDRESS_PREFIX,
  type CancellationWatch,
  type ConsumeOptions,
  type Consumer,
  type DeliveryHandler,
  type PublishOptions,
  type ReplyInbox,
  type Transport,
} from '../transport.js';
import { CONSUMER_RETRY, KafkaClient, logRestarts, SETUP_RETRY, warnIfUnguarded } from './client.js';
import { consumerGroup, DEFAULT_TOPIC_REPLICATION, isInboxTopic, requestTopic, type KafkaSpec, type TopicReplication } from './config.js';
import { metaFromHeaders, recordOf } from './records.js';
import { sendRequestRecord } from './publish.js';
import { LeaderMap } from './leaders.js';
import { BacklogRoute } from './backlog-route.js';
import { KafkaRequestConsumer } from './request-consumer.js';
import { stickyAssigner } from './sticky-assigner.js';
import { TickBatcher } from './tick-batcher.js';
import { CANCEL_TOPIC_CONFIG, createTopic } from './topics.js';
import { KafkaCancellations } from './cancellations.js';
import { replyCapture, TRANSACTION_TIMEOUT_MS, TransactionalCommits } from './transactions.js';
import { settleWithin } from '../../timers.js';

export interface KafkaTransportOptions {
  partitions: number;
  delivery: KafkaDelivery;
  /**
   * transactional only: the producer's transactional id, unique per sidecar
   * and stable across its restarts (a restarted sidecar then aborts the
   * transaction its predecessor left open). Default `kueuer.<queue>.<hostname>`.
   */
  transactionalId?: string;
  /** Of the topics this transport creates (topics.ts); DEFAULT_TOPIC_REPLICATION when absent. */
  replication?: TopicReplication;
}

/** Until the producer is connected: a check every 100 ms for 5 s. */
const CONNECTED_POLL: RetryOptions = { baseMs: 100, capMs: 100, jitter: false, maxAttempts: 51 };

/** Least time between two producer renewals (renewProducer). */
const PRODUCER_RENEW_MS = 5_000;

/** The error kafkajs gives for a send while its metadata names a deleted topic (or the topic is gone). */
function isStaleTopicError(err: unknown): boolean {
  for (let e = err as { message?: string; type?: string; originalError?: unknown } | undefined, depth = 0; e && depth < 4; depth++) {
    if (e.type === 'UNKNOWN_TOPIC_OR_PARTITION' || e.message?.includes('does not host this topic-partition')) return true;
    e = e.originalError as typeof e;
  }
  return false;
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return settleWithin(p, ms, () => new KueuerError('KUEUER_ERR_PUBLISH_TIMEOUT', `${what} not confirmed within ${ms} ms`));
}

export class KafkaTransport implements Transport {
  readonly kind = 'kafka';
  private readonly client: KafkaClient;
  private readonly kafka: Kafka;
  private producer: Producer;
  /** A producer renewal in flight (renewProducer), and when the last one ended. */
  private renewing: Promise<void> | null = null;
  private renewedAt = 0;
  private readonly admin: Admin;
  private readonly batcher: TickBatcher;
  /** Steers new requests away from partitions whose leader is down (leaders.ts). */
  private readonly leaders: LeaderMap;
  /** Sends new requests to the partition with the least backlog (backlog-route.ts). */
  private readonly route: BacklogRoute;
  private connected = false;
  private readonly topics = new Map<string, Promise<void>>();
  /** This process's reply topics, and whether each is ready to receive. */
  private readonly inboxes = new Map<string, boolean>();
  private sweepTimer: NodeJS.Timeout | undefined;
  /** Reply topics of other replicas seen without members, and since when. */
  private emptySince = new Map<string, number>();
  /** cancelRequest and watchCancellations (cancellations.ts). */
  private readonly cancellations: KafkaCancellations;

  private constructor(
    spec: KafkaSpec,
    private readonly options: KafkaTransportOptions,
    private readonly log: Logger,
  ) {
    this.client = new KafkaClient(spec, log);
    this.kafka = this.client.kafka;
    this.admin = this.client.admin;
    // Not idempotent: kafkajs serializes an idempotent producer's requests per
    // partition, which capped a reply topic at a few hundred records/s. So a
    // send whose answer was lost may have written its record: requests are sent
    // again flagged as possible reruns (publish.ts), and a duplicate reply is
    // dropped by the responder. No retries of its own: kafkajs 2.2.4 resends
    // such records unflagged, and a retry after a leader moved could skip
    // records and still resolve (tick-batcher.ts). Requests are tried again by
    // sendRequestRecord, replies by the sidecar's worker, until the deadline.
    this.producer = this.newProducer();
    this.batcher = new TickBatcher(
      () => this.producer,
      (err) => {
        if (isStaleTopicError(err)) this.renewProducer();
      },
    );
    this.leaders = new LeaderMap(this.admin, (broker) => this.client.recentlyUnreachable(broker));
    this.route = new BacklogRoute(this.admin, this.leaders, this.log);
    this.cancellations = new KafkaCancellations({
      kafka: this.kafka,
      admin: this.admin,
      log: this.log,
      connected: () => this.connected,
      waitConnected: () => this.waitConnected(),
      ensureTopic: (topic) => this.ensureTopic(topic, 1, CANCEL_TOPIC_CONFIG),
      forgetTopic: (topic, err) => isStaleTopicError(err) && this.topics.delete(topic),
      send: (topic, record) => this.batcher.send(topic, record),
    });
  }

  private newProducer(): Producer {
    const producer = this.kafka.producer({ allowAutoTopicCreation: false, retry: { retries: 0 } });
    // Only the producer in use says whether the transport is connected (a renewed one's old producer disconnects).
    producer.on('producer.connect', () => {
      if (producer !== this.producer) return;
      this.connected = true;
      this.log.info('connected to Kafka');
    });
    producer.on('producer.disconnect', () => {
      if (producer !== this.producer) return;
      this.connected = false;
      this.log.warn('disconnected from Kafka');
    });
    return producer;
  }

  /**
   * kafkajs 2.2.4 (tulios/kafkajs#1622): once a topic this producer sent to is deleted (a
   * responder's inbox, when it goes), its metadata refresh fails and every later send, to any
   * topic, fails with "This server does not host this topic-partition". A new producer starts with
   * no such topic; at most one renewal every 5 s, the old producer closed once the new one is in use.
   */
  private renewProducer(): void {
    if (this.renewing || Date.now() - this.renewedAt < PRODUCER_RENEW_MS) return;
    const fresh = this.newProducer();
    this.renewing = fresh
      .connect()
      .then(() => {
        const old = this.producer;
        this.producer = fresh;
        this.log.warn('renewed the Kafka producer: a topic it had sent to was deleted (kafkajs then fails every send)');
        setTimeout(() => void old.disconnect().catch(() => undefined), PRODUCER_RENEW_MS).unref();
      })
      .catch((err: unknown) => {
        this.log.warn({ err: (err as Error).message }, 'could not renew the Kafka producer; the next failed send tries again');
        void fresh.disconnect().catch(() => undefined);
      })
      .finally(() => {
        this.renewing = null;
        this.renewedAt = Date.now();
      });
  }

  /** Starts connecting and returns at once; until connected, publishes fail fast. */
  static async connect(spec: KafkaSpec, options: KafkaTransportOptions, log: Logger): Promise<KafkaTransport> {
    const transport = new KafkaTransport(spec, options, log.child({ backend: 'kafka', brokers: spec.brokers.join(',') }));
    warnIfUnguarded(transport.log);
    void transport.connectLoop();
    return transport;
  }

  private connectLoop(): Promise<void> {
    return this.client.connectWithRetry(async () => {
      if (this.connected) return;
      await this.admin.connect();
      await this.producer.connect();
    });
  }

  isReady(): boolean {
    if (!this.connected) return false;
    for (const ready of this.inboxes.values()) if (!ready) return false;
    return true;
  }

  /** Creates the topic once (with `config` over the defaults); concurrent callers share one attempt. */
  private ensureTopic(topic: string, partitions: number, config?: Record<string, string>): Promise<void> {
    let creating = this.topics.get(topic);
    if (!creating) {
      creating = createTopic(this.admin, this.log, topic, partitions, this.options.replication ?? DEFAULT_TOPIC_REPLICATION, config);
      this.topics.set(topic, creating);
      creating.catch(() => this.topics.delete(topic));
    }
    return creating;
  }

  async publishRequest(queue: string, message: WireMessage, options: PublishOptions): Promise<void> {
    if (!this.connected) throw new KueuerError('KUEUER_ERR_BROKER_UNAVAILABLE', 'not connected to Kafka');
    const topic = requestTopic(queue);
    await withTimeout(
      (async () => {
        await this.ensureTopic(topic, this.options.partitions);
        // To the least backlogged partition whose leader is reachable; sent again until the deadline (publish.ts, backlog-route.ts).
        this.route.watch(topic, consumerGroup(queue));
        await sendRequestRecord(
          (t, record) => this.batcher.send(t, record),
          this.route,
          topic,
          recordOf(message),
          Date.now() + options.timeoutMs,
          (err, fate, partition) =>
            this.log[fate === 'maybe-written' ? 'warn' : 'info'](
              { reqId: message.meta[META.id], topic, partition, err: (err as Error).message },
              fate === 'maybe-written'
                ? 'request not confirmed and maybe written; sending it again to the same partition, flagged as a possible rerun'
                : 'request not written; sending it again',
            ),
        );
      })(),
      options.timeoutMs,
      'request',
    );
  }

  async publishReply(replyTo: string, message: WireMessage, options: PublishOptions): Promise<void> {
    if (!replyTo.startsWith(REPLY_ADDRESS_PREFIX)) throw new KueuerError('KUEUER_ERR_ENVELOPE', `not a Kueuer reply topic: ${replyTo}`);
    const capture = replyCapture.getStore();
    if (capture) {
      // transactional: sent with the request's offset commit, in one transaction.
      capture.push({ topic: replyTo, message: { ...recordOf(message), partition: 0 } });
      return;
    }
    if (!this.connected) throw new KueuerError('KUEUER_ERR_BROKER_UNAVAILABLE', 'not connected to Kafka');
    // A reply topic has one partition (openReplyInbox): named, so its produce request carries it alone (tick-batcher.ts).
    await withTimeout(this.batcher.send(replyTo, { ...recordOf(message), partition: 0 }), options.timeoutMs, 'reply');
  }

  /**
   * Returns at once with the inbox's address; its topic and consumer are set
   * up as soon as Kafka answers. Until then isReady() is false, so no request
   * naming this inbox is published before the topic exists.
   */
  async openReplyInbox(queue: string, onReply: (message: WireMessage) => void): Promise<ReplyInbox> {
    const topic = `${REPLY_ADDRESS_PREFIX}${queue}.${randomBytes(8).toString('hex')}`;
    this.inboxes.set(topic, false);
    let closed = false;
    // Its own group, which only this replica ever joins: the sweep recognizes abandoned inboxes by their empty group.
    // Session 10 s, as the request consumers': when the group's coordinator dies, kafkajs rejoins as a new member
    // and the group waits for the old one's session to expire (30 s held every reply back ~40 s after a SIGKILL).
    // CONSUMER_RETRY: fetches again within a second of a partition leader's failover (client.ts).
    const consumer = this.kafka.consumer({ groupId: topic, maxWaitTimeInMs: 5, sessionTimeout: 10_000, heartbeatInterval: 3000, retry: CONSUMER_RETRY });
    logRestarts(consumer, this.log.child({ topic }), 'reply inbox');
    const setUp = retry(
      async () => {
        if (closed) return;
        await this.waitConnected();
        await this.ensureTopic(topic, 1);
        await consumer.connect();
        await consumer.subscribe({ topic, fromBeginning: true });
        await consumer.run({
          // Committed each second, so a rejoin (its coordinator moved) resumes there instead of reading
          // every reply again from the start (a rolling restart dropped 1,840 replies read twice as late).
          autoCommit: true,
          autoCommitInterval: 1000,
          eachMessage: async ({ message }) => onReply({ meta: metaFromHeaders(message.headers), body: message.value ?? Buffer.alloc(0) }),
        });
        if (!closed) this.inboxes.set(topic, true);
        this.scheduleSweep();
      },
      { ...SETUP_RETRY, onRetry: (err) => this.log.warn({ err: (err as Error).message, topic }, 'cannot set up the reply inbox yet; retrying') },
    );
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
    // Inbox topics only: a results topic without members still holds results no replica has stored.
    const candidates = (await this.admin.listTopics()).filter((t) => isInboxTopic(t) && !this.inboxes.has(t) && only(t));
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

  /**
   * Returns at once; the consumer joins its group as soon as Kafka answers, and keeps trying until
   * then. A reply address (a queue's results, responder/async/results.ts) is read as its own topic
   * and group, at least once whatever --delivery says, its handler called again until it resolves.
   */
  async consume(queue: string, options: ConsumeOptions, handler: DeliveryHandler): Promise<Consumer> {
    const results = isReplyAddress(queue);
    const topic = results ? queue : requestTopic(queue);
    const groupId = results ? queue : consumerGroup(queue);
    // One partition, as a reply inbox: the sidecar publishes replies to partition 0 (publishReply).
    const partitions = results ? 1 : this.options.partitions;
    const delivery: KafkaDelivery = results ? 'at-least-once' : this.options.delivery;
    // What this member holds, told to the group's leader at each join (sticky-assigner.ts).
    let owned: number[] = [];
    // Set below (busy partitions first); the assigner asks only once the worker runs.
    let ordered = (partitions: number[]) => partitions;
    const consumer = this.kafka.consumer({
      groupId,
      // Partitions stay with their live owner across rebalances; round-robin while a member without it is in the group.
      partitionAssigners: [stickyAssigner(() => ({ [topic]: ordered(owned) })), PartitionAssigners.roundRobin],
      // Short, since the consumer heartbeats while requests run: a dead sidecar's partitions move on within 10 s.
      sessionTimeout: 10_000,
      heartbeatInterval: 3000,
      rebalanceTimeout: 60_000,
      maxWaitTimeInMs: 5,
      allowAutoTopicCreation: false,
      retry: CONSUMER_RETRY,
    });
    const log = this.log.child({ queue });
    // Set below; the event can only fire once the worker runs.
    let onAssigned: (partitions: number[]) => void = () => undefined;
    logRestarts(consumer, log, 'request consumer');
    consumer.on(consumer.events.GROUP_JOIN, (e) => {
      const assigned = e.payload.memberAssignment[topic] ?? [];
      owned = assigned;
      log.info({ memberId: e.payload.memberId, partitions: assigned }, 'joined the consumer group');
      onAssigned(assigned);
    });
    let transactions: TransactionalCommits | null = null;
    if (delivery === 'transactional') {
      const transactionalId = this.options.transactionalId ?? `kueuer.${queue}.${hostname()}`;
      const txProducer = () =>
        this.kafka.producer({
          transactionalId,
          idempotent: true,
          maxInFlightRequests: 1,
          transactionTimeout: TRANSACTION_TIMEOUT_MS,
          allowAutoTopicCreation: false,
          // The broker answers CONCURRENT_TRANSACTIONS while it writes the previous transaction's markers: retry soon.
          retry: { initialRetryTime: 10, retries: 20 },
        });
      transactions = new TransactionalCommits(txProducer, groupId, topic, log.child({ transactionalId }));
    }
    const endOffsets = async () => new Map((await this.admin.fetchTopicOffsets(topic)).map((p) => [p.partition, BigInt(p.high)] as const));
    const worker = new KafkaRequestConsumer(
      consumer,
      topic,
      options,
      delivery,
      handler,
      log,
      endOffsets,
      transactions,
      results ? 'until-stopped' : 'until-deadline',
    );
    onAssigned = (assigned) => worker.assigned(assigned);
    ordered = (partitions) => worker.busyFirst(partitions);
    // A results topic must exist before a request naming it is published: not ready until it does.
    if (results) this.inboxes.set(topic, false);
    const tx = transactions;
    worker.starting = retry(
      async () => {
        if (worker.stopping) return;
        await this.waitConnected();
        await this.ensureTopic(topic, partitions);
        if (results && !worker.stopping) this.inboxes.set(topic, true);
        // Aborts whatever a predecessor with the same transactional id left open.
        if (tx) await tx.connect();
        await consumer.connect();
        await worker.start();
      },
      { ...SETUP_RETRY, onRetry: (err) => this.log.warn({ err: (err as Error).message, topic }, 'cannot start consuming yet; retrying') },
    );
    if (!results) return worker;
    return {
      get inFlight() {
        return worker.inFlight;
      },
      stop: async () => {
        this.inboxes.delete(topic);
        await worker.stop();
      },
    };
  }

  /** Appends the cancel to the queue's cancellation topic (cancellations.ts); resolves once all in-sync replicas have it. */
  cancelRequest(queue: string, id: string, deadline: number, options: PublishOptions): Promise<void> {
    return this.cancellations.cancel(queue, id, deadline, options);
  }

  /** Reads the queue's cancellation topic alone, from its start; resolves once caught up (bounded). */
  watchCancellations(queue: string, onCancel: (id: string) => void, options: { capacity?: number } = {}): Promise<CancellationWatch> {
    return this.cancellations.watch(queue, onCancel, options.capacity);
  }

  /** Polls every 100 ms for up to 5 s. */
  private waitConnected(): Promise<void> {
    return retry(async () => {
      if (!this.connected) throw new KueuerError('KUEUER_ERR_BROKER_UNAVAILABLE', 'not connected to Kafka');
    }, CONNECTED_POLL);
  }

  async close(): Promise<void> {
    clearInterval(this.sweepTimer);
    this.route.close();
    await this.cancellations.close();
    await this.renewing;
    await this.producer.disconnect().catch(() => undefined);
    await this.admin.disconnect().catch(() => undefined);
  }
}
