/**
 * Kafka's `transactional` delivery: a request's reply and its offset commit
 * go out in one transaction, so after a crash either both happened or
 * neither did (the request is then redelivered and answered once).
 *
 * The sidecar's worker publishes replies as usual; while a request is handled
 * in this mode, `replyCapture` holds them instead of sending them. Once the
 * partition's contiguous commit position moves, the replies of every request
 * below it and the new position are committed together, many requests per
 * transaction. A reply finished out of order therefore waits for the requests
 * before it in its partition: the price of "offset committed iff reply was".
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Producer, Transaction } from 'kafkajs';
import type { Logger } from 'pino';
import { retry, type BackoffOptions } from '../../retry.js';
import type { ContiguousOffsets } from './offsets.js';
import type { OutgoingRecord } from './records.js';
import { byPartition } from './tick-batcher.js';

/** Set while a request is handled in transactional mode: publishReply appends here instead of sending. */
export const replyCapture = new AsyncLocalStorage<OutgoingRecord[]>();

/** How long the broker lets a transaction stay open; a sidecar that dies mid-transaction blocks its replies' readers at most this long (plus the broker's abort sweep). */
export const TRANSACTION_TIMEOUT_MS = 10_000;

/** Between attempts at a failed transaction: 100 ms doubling to 2 s, not jittered (one sidecar's own loop). */
const TRANSACTION_RETRY: BackoffOptions = { baseMs: 100, capMs: 2000, jitter: false };
/** While stopping, a transaction failing this many times in a row is given up: its requests are redelivered. */
const STOPPING_ATTEMPTS = 3;

interface PendingCommit {
  position: bigint;
  records: OutgoingRecord[];
}

export class TransactionalCommits {
  /** Per partition tracker: replies of finished requests not yet below the commit position. */
  private readonly held = new WeakMap<ContiguousOffsets, Map<bigint, OutgoingRecord[]>>();
  private pending = new Map<number, PendingCommit>();
  private running: Promise<void> | null = null;
  private stopping = false;
  private producer: Producer;
  /** Whether the current producer is connected and holds the transactional id (connect()). */
  private ready = false;

  constructor(
    /** A new producer with the sidecar's transactional id (kafkajs's state of a cut-off transaction cannot be reset). */
    private readonly newProducer: () => Producer,
    private readonly groupId: string,
    private readonly topic: string,
    private readonly log: Logger,
  ) {
    this.producer = newProducer();
  }

  /**
   * Connects and takes over the transactional id: the broker aborts the transaction a predecessor
   * with the same id left open. kafkajs 2.2.4 registers the id (InitProducerId) only when a
   * transaction begins, not on connect, so one is begun and aborted (nothing sent).
   */
  async connect(): Promise<void> {
    try {
      await this.producer.connect();
      const tx = await this.producer.transaction();
      await tx.abort();
      this.ready = true;
    } catch (err) {
      // Whatever state it was left in, the next attempt starts from a new producer.
      await this.replaceProducer();
      throw err;
    }
  }

  /**
   * A new producer with the same transactional id, connected by the next attempt: its
   * InitProducerId makes the (new) coordinator finish what the old one left, committed if its
   * commit was logged, aborted otherwise. The retried transaction carries the same replies and
   * positions: at worst a reply is published twice (the responder drops the second) and a position
   * committed again; the app is not called again.
   */
  private async replaceProducer(): Promise<void> {
    const old = this.producer;
    this.producer = this.newProducer();
    this.ready = false;
    await old.disconnect().catch(() => undefined);
  }

  /**
   * Records a finished request's replies; when its completion moved the
   * partition's position (`next`), queues everything below it for the next
   * transaction.
   */
  finished(partition: number, tracker: ContiguousOffsets, offset: bigint, records: OutgoingRecord[], next: bigint | null): void {
    let held = this.held.get(tracker);
    if (!held) {
      held = new Map();
      this.held.set(tracker, held);
    }
    held.set(offset, records);
    if (next === null) return;
    const ready: OutgoingRecord[] = [];
    for (const [o, r] of [...held].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      if (o >= next) break;
      ready.push(...r);
      held.delete(o);
    }
    const queued = this.pending.get(partition);
    this.pending.set(partition, { position: queued && queued.position > next ? queued.position : next, records: [...(queued?.records ?? []), ...ready] });
    this.kick();
  }

  private kick(): void {
    if (this.running) return;
    this.running = this.loop().finally(() => {
      this.running = null;
      if (this.pending.size > 0) this.kick();
    });
  }

  /**
   * Commits what is pending until nothing is. The owner of a failed transaction's retry (docs/kafka.md,
   * "Who tries again"): `retry()` until it commits; while stopping, up to STOPPING_ATTEMPTS in a row.
   */
  private async loop(): Promise<void> {
    while (this.pending.size > 0) {
      let attempts = 0;
      try {
        await retry(
          (attempt) => {
            attempts = attempt;
            return this.commitPending();
          },
          {
            ...TRANSACTION_RETRY,
            retryable: () => !(this.stopping && attempts >= STOPPING_ATTEMPTS),
            onRetry: (err, attempt) => this.log.warn({ err: (err as Error).message, attempt }, 'transaction failed and was aborted; retrying'),
          },
        );
      } catch (err) {
        this.log.error({ err: (err as Error).message }, 'transaction failed while stopping; its requests will be redelivered to another sidecar');
        this.pending.clear();
        return;
      }
    }
  }

  /** One transaction of everything pending; when it fails, the batch goes back in front of anything queued since. */
  private async commitPending(): Promise<void> {
    const batch = this.pending;
    this.pending = new Map();
    try {
      await this.commit(batch);
    } catch (err) {
      // Its replies are older and its positions lower than anything queued meanwhile.
      for (const [partition, b] of batch) {
        const newer = this.pending.get(partition);
        this.pending.set(partition, {
          position: newer && newer.position > b.position ? newer.position : b.position,
          records: [...b.records, ...(newer?.records ?? [])],
        });
      }
      throw err;
    }
  }

  private async commit(batch: Map<number, PendingCommit>): Promise<void> {
    if (!this.ready) await this.connect();
    const records = [...batch.values()].flatMap((b) => b.records);
    let tx: Transaction;
    try {
      tx = await this.producer.transaction();
    } catch (err) {
      await this.replaceProducer();
      throw err;
    }
    try {
      // One send per reply partition: kafkajs 2.2.4 can resolve a send spanning several leaders without
      // writing some of its records when a leader moves (tick-batcher.ts), and the commit would then
      // carry the offset without the reply.
      await Promise.all(
        byPartition(records).map((group) => tx.sendBatch({ acks: -1, topicMessages: [{ topic: group[0]!.topic, messages: group.map((r) => r.message) }] })),
      );
      await tx.sendOffsets({
        consumerGroupId: this.groupId,
        topics: [{ topic: this.topic, partitions: [...batch].map(([partition, b]) => ({ partition, offset: b.position.toString() })) }],
      });
      await tx.commit();
    } catch (err) {
      // A commit cut off by the coordinator's death leaves kafkajs's transaction state COMMITTING for good
      // (every later transaction failed "Cannot call beginTransaction in state COMMITTING" and the sidecar
      // answered nothing more): when the abort fails too, a new producer takes over.
      try {
        await tx.abort();
      } catch {
        this.log.warn('a failed transaction could not be aborted; a new producer with the same transactional id takes over');
        await this.replaceProducer();
      }
      throw err;
    }
  }

  /** Commits what is queued (giving up after a few failures), then disconnects the producer. */
  async close(): Promise<void> {
    this.stopping = true;
    if (this.pending.size > 0) this.kick();
    while (this.running) await this.running;
    await this.producer.disconnect().catch(() => undefined);
  }
}
