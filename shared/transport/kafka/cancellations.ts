/**
 * Cancelling queued requests on Kafka (docs/async.md, "Cancel"). A record in a topic cannot be
 * taken back, so a cancel travels beside it, as on RabbitMQ (amqp/cancellations.ts): the responder
 * appends `{id, deadline}` to the queue's cancellation topic (`kueuer.reply.<queue>.cancel`,
 * topics.ts: one partition, replicated as the request topics, kept 24 h and 16 MiB), acks=all,
 * and every sidecar of the queue reads the whole topic into a bounded set of cancelled ids; a
 * request whose id is in it is acked without calling the app (sidecar/worker.ts).
 *
 * Every sidecar reads every cancel, so each reads alone: a consumer group of its own
 * (`<topic>-reader-<random>`), which commits no offset and is deleted when the reader closes; one
 * left by a sidecar that died is empty and holds no offset, and Kafka removes such a group at its
 * next offsets cleanup (`offsets.retention.check.interval.ms`). Without committed offsets a reader
 * starts at the topic's first record, when it starts and again after its group rejoins: it reads
 * back the retention window, and an id read twice counts once.
 *
 * Caught up: before the sidecar consumes requests, the reader waits (bounded, CATCH_UP_WAIT_MS) to
 * have read up to the topic's end as it was when it started. A cancel resolves only once all
 * in-sync replicas have it, so every cancel answered before then lies below that end. When the
 * topic does not exist yet, no cancel was ever answered: the sidecar goes on at once, and the
 * reader creates the topic and joins meanwhile (a cancel that comes before it reads is the race of
 * a cancel and a delivery at once: the app may run it, its answer discarded).
 *
 * Hostile input: a record that is not a cancel (anyone who may write the reply namespace can
 * write here) is skipped and counted, and said in the log at most every 10 s; the ids are checked
 * (32 hex digits), and each is kept until its deadline, clamped to 24 h (cancelled-ids.ts). Records
 * are read uncommitted: a transaction left open would otherwise hide every later cancel until the
 * broker aborts it; and a transaction's marker last in the topic (never handed to a consumer) does
 * not hold up the catch-up.
 */
import { randomBytes } from 'node:crypto';
import type { Admin, Consumer, Kafka, KafkaMessage } from 'kafkajs';
import type { Logger } from 'pino';
import { KueuerError } from '../../errors.js';
import { isRequestId } from '../../request-id.js';
import { retry } from '../../retry.js';
import { settleWithin } from '../../timers.js';
import { CANCELLED_IDS_CAPACITY, CancelledIdsWatch } from '../cancelled-ids.js';
import type { CancellationWatch, PublishOptions } from '../transport.js';
import { SETUP_RETRY } from './client.js';
import { sendFailure } from './publish.js';
import type { OutgoingRecord } from './records.js';
import { cancelTopic } from './topics.js';

/**
 * How long a sidecar waits to have read the topic up to now before consuming requests anyway:
 * longer than RabbitMQ's 5 s, since joining a new consumer group waits the broker's
 * `group.initial.rebalance.delay.ms` (3 s by default) first.
 */
export const CATCH_UP_WAIT_MS = 10_000;
/** The most a fetch waits for new cancels: a cancel reaches a sidecar within about this. */
const FETCH_WAIT_MS = 100;
/** Least time between two log lines about skipped records. */
const SKIP_LOG_EVERY_MS = 10_000;
/** Between attempts at writing a cancel, until the DELETE's publish timeout. */
const RESEND = { baseMs: 50, capMs: 1000, jitter: true } as const;

/** The record of a cancel: the id as key (as a request's), `{id, deadline}` as value, on the topic's one partition. */
export function cancelRecord(id: string, deadline: number): OutgoingRecord['message'] {
  if (!isRequestId(id)) throw new KueuerError('KUEUER_ERR_ENVELOPE', `not a request id: ${JSON.stringify(id.slice(0, 64))}`);
  if (!Number.isFinite(deadline)) throw new KueuerError('KUEUER_ERR_ENVELOPE', 'a cancellation needs the deadline of its request');
  return { key: id, value: Buffer.from(JSON.stringify({ id, deadline })), headers: {}, partition: 0 };
}

/** The cancel a record carries, or why it carries none. */
export function readCancelRecord(message: Pick<KafkaMessage, 'key' | 'value'>): { id: string; deadline: number } | { skip: string } {
  if (!message.value || message.value.length > 1024) return { skip: 'no value, or one too long for a cancel' };
  let entry: unknown;
  try {
    entry = JSON.parse(message.value.toString('utf8'));
  } catch {
    return { skip: 'a value that is not JSON' };
  }
  const { id, deadline } = (entry ?? {}) as { id?: unknown; deadline?: unknown };
  if (typeof id !== 'string' || !isRequestId(id)) return { skip: 'no request id' };
  if (typeof deadline !== 'number' || !Number.isFinite(deadline)) return { skip: 'no deadline' };
  if (message.key?.toString('utf8') !== id) return { skip: 'a key that is not its id' };
  return { id, deadline };
}

/** What the cancels need of the transport (kafka/transport.ts). */
export interface CancellationDeps {
  kafka: Kafka;
  admin: Admin;
  log: Logger;
  connected: () => boolean;
  /** Resolves once connected (or rejects after a bounded wait). */
  waitConnected: () => Promise<void>;
  /** Creates the topic unless it exists (as the transport's other topics, with CANCEL_TOPIC_CONFIG). */
  ensureTopic: (topic: string) => Promise<void>;
  /**
   * After a failed send: when `err` says the topic is gone (deleted while in use), the next
   * ensureTopic creates it again instead of trusting that it was created once. True if so.
   */
  forgetTopic: (topic: string, err: unknown) => boolean;
  /** One attempt at writing records, acks=all (the transport's tick batcher). */
  send: (topic: string, message: OutgoingRecord['message']) => Promise<void>;
}

/** The Kafka transport's cancelRequest and watchCancellations. */
export class KafkaCancellations {
  private readonly watchers = new Set<KafkaCancellationWatcher>();

  constructor(private readonly deps: CancellationDeps) {}

  /**
   * Appends the cancel to the queue's cancellation topic; resolves once all in-sync replicas
   * have it (acks=all), sent again until then or the timeout (a duplicate counts once).
   */
  async cancel(queue: string, id: string, deadline: number, options: PublishOptions): Promise<void> {
    const record = cancelRecord(id, deadline);
    if (!this.deps.connected()) throw new KueuerError('KUEUER_ERR_BROKER_UNAVAILABLE', 'not connected to Kafka');
    const topic = cancelTopic(queue);
    const until = Date.now() + options.timeoutMs;
    // A topic deleted while in use (by an operator, or anyone who may) is created again: the
    // transport created each topic once, so every cancel after a deletion failed, until a restart.
    const attempt = async () => {
      await this.deps.ensureTopic(topic);
      await this.deps.send(topic, record).catch((err: unknown) => {
        if (this.deps.forgetTopic(topic, err)) this.deps.log.warn({ topic }, 'the cancellation topic is gone; creating it again');
        throw err;
      });
    };
    const sent = retry(attempt, { ...RESEND, until, retryable: (err) => sendFailure(err) !== 'refused' });
    await settleWithin(sent, options.timeoutMs, () => new KueuerError('KUEUER_ERR_PUBLISH_TIMEOUT', `cancel not confirmed within ${options.timeoutMs} ms`));
  }

  /** Reads the queue's cancellation topic alone, from its start; resolves once caught up (bounded). */
  async watch(queue: string, onCancel: (id: string) => void, capacity?: number): Promise<CancellationWatch> {
    const watcher: KafkaCancellationWatcher = new KafkaCancellationWatcher(this.deps, queue, onCancel, capacity, () => this.watchers.delete(watcher));
    this.watchers.add(watcher);
    await watcher.start();
    return watcher;
  }

  async close(): Promise<void> {
    for (const watcher of [...this.watchers]) await watcher.close();
  }
}

/** A sidecar's reader of the queue's cancellation topic. */
export class KafkaCancellationWatcher extends CancelledIdsWatch implements CancellationWatch {
  private readonly log: Logger;
  private readonly topic: string;
  private readonly groupId: string;
  private readonly consumer: Consumer;
  private closed = false;
  /** Ends the set-up's retries when the reader closes. */
  private readonly closing = new AbortController();
  private setUp: Promise<void> = Promise.resolve();
  /** The topic's end when the reader started: caught up once it has read the record before it. */
  private target: bigint | null = null;
  /** Whether the target was raised to the first fetch's high watermark. */
  private targetFetched = false;
  private caughtUp: () => void = () => undefined;
  private readonly reached = new Promise<void>((resolve) => (this.caughtUp = resolve));
  private skipped = 0;
  private skipLoggedAt = 0;

  constructor(
    private readonly deps: CancellationDeps,
    private readonly queue: string,
    private readonly onCancel: (id: string) => void,
    capacity = CANCELLED_IDS_CAPACITY,
    private readonly onClose: () => void = () => undefined,
  ) {
    super(capacity);
    this.log = deps.log;
    this.topic = cancelTopic(queue);
    this.groupId = `${this.topic}-reader-${randomBytes(8).toString('hex')}`;
    this.consumer = deps.kafka.consumer({
      groupId: this.groupId,
      maxWaitTimeInMs: FETCH_WAIT_MS,
      sessionTimeout: 10_000,
      heartbeatInterval: 3000,
      allowAutoTopicCreation: false,
      // Cancels are written outside transactions. Reading committed records only, a transaction
      // that anyone with produce rights leaves open hid every later cancel from every sidecar
      // until the broker aborted it (transaction.max.timeout.ms, 15 min by default).
      readUncommitted: true,
    });
    // The end to catch up to: the admin client reads the last stable offset, below a transaction
    // left open, so the first fetch's high watermark raises it (the end when the reader started,
    // or later). Only the first: a flood would otherwise move it on and on.
    this.consumer.on(this.consumer.events.START_BATCH_PROCESS, ({ payload }) => {
      if (this.target === null || this.targetFetched || payload.topic !== this.topic) return;
      this.targetFetched = true;
      if (BigInt(payload.highWatermark) > this.target) this.target = BigInt(payload.highWatermark);
    });
    // Caught up also at the end of a batch that reaches the target: the record before it may be a
    // transaction's marker, which no consumer is handed, so reaching it in read() alone waited
    // CATCH_UP_WAIT_MS.
    this.consumer.on(this.consumer.events.END_BATCH_PROCESS, ({ payload }) => {
      if (this.target !== null && payload.topic === this.topic && BigInt(payload.lastOffset) + 1n >= this.target) {
        this.target = null;
        this.caughtUp();
      }
    });
    this.consumer.on(this.consumer.events.CRASH, (e) => {
      if (!this.closed) this.log.warn({ topic: this.topic, err: e.payload.error.message, restart: e.payload.restart }, 'the cancellation reader failed');
    });
  }

  /**
   * Starts reading, and resolves once read up to the topic's end or after CATCH_UP_WAIT_MS. Never
   * rejects: a reader that cannot start (Kafka unreachable, no permission on the topic) keeps
   * trying, said in the log, while the sidecar consumes without its cancels meanwhile.
   */
  async start(): Promise<void> {
    this.setUp = retry(() => this.run(), {
      ...SETUP_RETRY,
      signal: this.closing.signal,
      onRetry: (err) =>
        this.log.warn(
          { queue: this.queue, topic: this.topic, err: (err as Error).message },
          "cannot read the queue's cancellations yet; retrying (a cancelled request reaches the app meanwhile, its answer discarded). The broker user needs create, describe and read on the topic, and read and delete on its reader groups",
        ),
    }).catch(() => undefined);
    let timer: NodeJS.Timeout | undefined;
    const late = await Promise.race([
      this.reached.then(() => false),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), CATCH_UP_WAIT_MS))),
    ]);
    clearTimeout(timer);
    if (late && !this.closed) {
      this.log.warn(
        { queue: this.queue, topic: this.topic, waitedMs: CATCH_UP_WAIT_MS },
        'the cancellation topic was not read up to now in time; consuming anyway',
      );
    }
  }

  private async run(): Promise<void> {
    if (this.closed) return;
    await this.deps.waitConnected();
    // No topic yet: no cancel was ever written (the responder creates it before the first), so
    // there is nothing to catch up on, and the sidecar need not wait for the topic to be created.
    if (!(await this.deps.admin.listTopics()).includes(this.topic)) this.caughtUp();
    await this.deps.ensureTopic(this.topic);
    const end = (await this.deps.admin.fetchTopicOffsets(this.topic)).find((p) => p.partition === 0);
    if (!end || BigInt(end.high) <= BigInt(end.low)) this.caughtUp();
    else this.target = BigInt(end.high);
    if (this.closed) return;
    await this.consumer.connect();
    await this.consumer.subscribe({ topic: this.topic, fromBeginning: true });
    await this.consumer.run({
      autoCommit: false,
      eachMessage: async ({ message }) => this.read(message),
    });
  }

  private read(message: KafkaMessage): void {
    const entry = readCancelRecord(message);
    if ('skip' in entry) this.skip(message.offset, entry.skip);
    else if (this.ids.add(entry.id, entry.deadline)) this.onCancel(entry.id);
    if (this.target !== null && BigInt(message.offset) + 1n >= this.target) {
      this.target = null;
      this.caughtUp();
    }
  }

  private skip(offset: string, why: string): void {
    this.skipped++;
    const now = Date.now();
    if (now - this.skipLoggedAt < SKIP_LOG_EVERY_MS) return;
    this.skipLoggedAt = now;
    this.log.warn({ queue: this.queue, topic: this.topic, offset, why, skipped: this.skipped }, 'skipped a record of the cancellation topic that is no cancel');
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.closing.abort();
    this.onClose();
    this.stopSweeping();
    this.caughtUp();
    await this.setUp;
    await this.consumer.disconnect().catch(() => undefined);
    // Empty once its only member left; it holds no offset, so Kafka would drop it anyway, later.
    await this.deps.admin
      .deleteGroups([this.groupId])
      .catch((err: unknown) => this.log.debug({ group: this.groupId, err: (err as Error).message }, 'could not delete the cancellation reader group'));
  }
}
