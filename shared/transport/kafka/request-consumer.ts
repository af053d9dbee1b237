/**
 * The sidecar's side of a Kafka queue: one consumer-group member that runs
 * up to `concurrency` requests at once across its partitions and commits
 * only contiguous finished offsets (see transport.ts for the delivery modes).
 */
import type { Consumer as KafkaConsumer, EachBatchPayload, KafkaMessage } from 'kafkajs';
import type { Logger } from 'pino';
import { META } from '../../envelope.js';
import { retry, type BackoffOptions } from '../../retry.js';
import { settleWithin } from '../../timers.js';
import type { KafkaDelivery } from '../backend.js';
import type { ConsumeOptions, Consumer, DeliveryHandler } from '../transport.js';
import { ContiguousOffsets, requeueFailedCommits } from './offsets.js';
import { metaFromHeaders, REPUBLISHED_HEADER, type OutgoingRecord } from './records.js';
import { Slots } from './slots.js';
import { replyCapture, type TransactionalCommits } from './transactions.js';

/**
 * How long a failed handler is called again (marked redelivered, after 100 ms doubling to 1 s):
 * - `until-deadline` (requests): until the request's deadline, then it counts as done;
 * - `until-stopped` (a queue's asynchronous results): until it resolves, the consumer stops or the
 *   partition moves to another member; a record never handled is then not done, so the offset is
 *   not committed past it and the group's next reader gets it again.
 */
export type HandlerRetry = 'until-deadline' | 'until-stopped';

/** A handler that failed runs again, marked redelivered, after 100 ms doubling to 1 s (see HandlerRetry). */
const HANDLER_RETRY: BackoffOptions = { baseMs: 100, capMs: 1000, jitter: false };
/** How long a failing offset commit is tried again: past a coordinator's move after a broker loss (~9 s). */
const COMMIT_RETRY_MS = 20_000;
/** How long a new assignment's first dispatch waits for the partitions' end offsets (a broker may be failing over). */
const END_OFFSETS_WAIT_MS = 5_000;

export class KafkaRequestConsumer implements Consumer {
  private running = 0;
  /** Requests running per partition (the sticky assigner keeps busy partitions with this member). */
  private readonly runningIn = new Map<number, number>();
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
  /**
   * Set when a heartbeat says the group is rebalancing (a member joined or left), until the new
   * assignment: records fetched but not yet dispatched stay in Kafka for whoever owns their
   * partition next, instead of this member working through its whole fetched backlog first
   * (kafkajs rejoins only once every running batch returns).
   */
  private rebalancing = false;
  /** Aborted when `rebalancing` is set: batches waiting for a slot stop waiting (see batch()). */
  private rebalance = new AbortController();
  /** The partitions' end offsets when this member's current assignment began (see assigned()). */
  private ends: Promise<Map<number, bigint> | null> = Promise.resolve(null);

  constructor(
    private readonly consumer: KafkaConsumer,
    private readonly topic: string,
    private readonly options: ConsumeOptions,
    private readonly delivery: KafkaDelivery,
    private readonly handler: DeliveryHandler,
    private readonly log: Logger,
    /** The request topic's end offset per partition, read when partitions are assigned. */
    private readonly endOffsets: () => Promise<Map<number, bigint>>,
    /** transactional only: where finished requests' replies and positions go. */
    private readonly transactions: TransactionalCommits | null = null,
    private readonly handlerRetry: HandlerRetry = 'until-deadline',
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
    this.rebalancing = false;
    if (this.rebalance.signal.aborted) this.rebalance = new AbortController();
    // Read now, before the first fetch: records up to these may have been started by the previous owners.
    this.ends = settleWithin(this.endOffsets(), END_OFFSETS_WAIT_MS, () => new Error(`no answer within ${END_OFFSETS_WAIT_MS} ms`)).catch((err: Error) => {
      this.log.warn({ err: err.message }, "cannot read the partitions' end offsets; the first fetch's end offset counts instead");
      return null;
    });
    for (const [partition, tracker] of this.partitions) {
      if (partitions.includes(partition)) continue;
      this.abandoned.add(tracker);
      this.partitions.delete(partition);
      this.toCommit.delete(partition);
      this.log.info({ partition }, 'partition revoked; its unfinished requests go to the new owner');
    }
  }

  /** A heartbeat said the group is rebalancing: stop dispatching, and stop waiting for slots. */
  private rebalanceBegan(): void {
    if (this.rebalancing) return;
    this.rebalancing = true;
    this.log.info('the group is rebalancing; records not yet dispatched are left to the next assignment');
    this.rebalance.abort();
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

  /** `partitions` with those running a request first: what the sticky assigner gives up last. */
  busyFirst(partitions: number[]): number[] {
    const busy = (p: number) => (this.runningIn.has(p) ? 0 : 1);
    return [...partitions].sort((a, b) => busy(a) - busy(b) || a - b);
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
   * A failed commit (the group coordinator's broker died and it moves, ~9 s) is
   * tried again with a backoff for up to COMMIT_RETRY_MS, for the partitions this
   * member still owns; what still fails is re-read by the partition's next owner,
   * flagged redelivered (see ContiguousOffsets).
   */
  private commit(partition: number, offset: bigint): Promise<void> {
    const current = this.toCommit.get(partition);
    if (current === undefined || offset > current) this.toCommit.set(partition, offset);
    if (!this.committing) {
      this.committing = (async () => {
        let failingSince: number | null = null;
        let wait = 100;
        while (this.toCommit.size > 0) {
          const batch = [...this.toCommit.entries()];
          this.toCommit.clear();
          try {
            await this.consumer.commitOffsets(batch.map(([p, o]) => ({ topic: this.topic, partition: p, offset: o.toString() })));
            failingSince = null;
            wait = 100;
          } catch (err) {
            failingSince ??= Date.now();
            if (this.stopping || Date.now() - failingSince > COMMIT_RETRY_MS) {
              this.log.warn({ err: (err as Error).message }, 'offset commit failed; the next owner reruns those requests, flagged redelivered');
              continue;
            }
            this.log.info({ err: (err as Error).message, retryInMs: wait }, 'offset commit failed; trying again');
            requeueFailedCommits(batch, this.toCommit, (p) => this.partitions.has(p));
            await new Promise((resolve) => setTimeout(resolve, wait));
            wait = Math.min(wait * 2, 1000);
          }
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
  private async batch(payload: EachBatchPayload): Promise<void> {
    const { batch } = payload;
    const first = batch.messages[0];
    if (!first) return;
    const partition = batch.partition;
    let offsets = this.partitions.get(partition);
    if (!offsets) {
      // First sight of this partition since it was assigned to us (lost partitions are dropped in assigned()).
      // A later batch starts past requests still running, so it must not start a new tracker: that would
      // commit past them (a SIGKILL then loses them; the fault matrix caught exactly that).
      // Records up to the partition's end offset at assignment may have been started by its previous owner
      // (see offsets.ts); this batch's end offset is later, so it stands in only when that read failed.
      const end = (await this.ends)?.get(partition) ?? BigInt(batch.highWatermark);
      offsets = this.partitions.get(partition) ?? new ContiguousOffsets(BigInt(first.offset), end);
      this.partitions.set(partition, offsets);
    }
    const tracker = offsets;
    // Heartbeat while waiting for a free slot, so a slow app does not trigger a rebalance.
    const beat = setInterval(
      () =>
        void payload.heartbeat().catch((err: unknown) => {
          if (isRebalancing(err)) this.rebalanceBegan();
        }),
      3000,
    );
    const leave = (): boolean => this.stopping || this.rebalancing || !payload.isRunning() || payload.isStale();
    try {
      for (const message of batch.messages) {
        if (leave()) break;
        // A rebalance ends the wait at once: kafkajs rejoins only once this returns, and a request
        // already running (maybe for minutes) must not hold up the whole group. The records not
        // dispatched stay uncommitted, in Kafka, for whoever owns the partition next.
        if (!(await this.slots.acquire(this.rebalance.signal))) break;
        if (leave()) {
          this.slots.release();
          break;
        }
        const offset = BigInt(message.offset);
        if (!tracker.dispatched(offset)) {
          // Re-fetched after a rejoin that kept the partition: this member already runs or ran it.
          this.slots.release();
          payload.resolveOffset(message.offset);
          continue;
        }
        if (this.delivery === 'at-most-once') {
          // Never run twice: the request is committed before the app sees it.
          await this.commit(partition, offset + 1n);
        }
        this.running++;
        this.runningIn.set(partition, (this.runningIn.get(partition) ?? 0) + 1);
        // at-most-once commits before the app sees a record, so nothing past the committed position ever ran.
        const work = this.process(message, this.delivery !== 'at-most-once' && tracker.mayHaveRun(offset), () => this.abandoned.has(tracker))
          .then((replies) => {
            // Not handled (until-stopped): not done, so never committed past; the next reader gets it again.
            if (replies === null || this.abandoned.has(tracker)) return;
            const next = tracker.complete(offset);
            if (this.transactions) this.transactions.finished(partition, tracker, offset, replies, next);
            else if (next !== null && this.delivery === 'at-least-once') void this.commit(partition, next);
          })
          .finally(() => {
            this.running--;
            const left = (this.runningIn.get(partition) ?? 1) - 1;
            if (left > 0) this.runningIn.set(partition, left);
            else this.runningIn.delete(partition);
            this.slots.release();
            this.inFlightWork.delete(work);
          });
        this.inFlightWork.add(work);
        payload.resolveOffset(message.offset);
      }
    } finally {
      clearInterval(beat);
    }
  }

  /**
   * Runs the handler. A handler that rejects (the sidecar's worker has already retried its reply
   * until the deadline: see docs/kafka.md, "Who tries again") cannot be handed back to Kafka, so
   * it runs again here, marked redelivered (the app sees `x-kueuer-redelivered: true`), until the
   * request's deadline, or (until-stopped) until it resolves, the consumer stops or `lost()`. In
   * transactional mode the replies it published are captured and returned, to be sent with the
   * offset commit. Null: given up without handling it (until-stopped), so it is not done.
   */
  private async process(message: KafkaMessage, mayHaveRun: boolean, lost: () => boolean): Promise<OutgoingRecord[] | null> {
    const meta = metaFromHeaders(message.headers);
    // A copy the responder sent again after a lost answer: the first copy may have run (publish.ts), in any delivery mode.
    const first = { message: { meta, body: message.value ?? Buffer.alloc(0) }, redelivered: mayHaveRun || meta[REPUBLISHED_HEADER] !== undefined };
    const untilStopped = this.handlerRetry === 'until-stopped';
    const deadline = Number(first.message.meta[META.deadline] ?? 0);
    const giveUp = untilStopped ? () => this.stopping || lost() : () => Date.now() >= deadline || this.stopping;
    try {
      return await retry(
        async (attempt) => {
          const delivery = attempt === 1 ? first : { ...first, redelivered: true };
          const replies: OutgoingRecord[] = [];
          if (this.transactions) await replyCapture.run(replies, () => this.handler(delivery));
          else await this.handler(delivery);
          return replies;
        },
        {
          ...HANDLER_RETRY,
          retryable: () => !giveUp(),
          ...(untilStopped
            ? {
                onRetry: (err: unknown, attempt: number) => {
                  if (attempt === 1) this.log.warn({ err: (err as Error).message, offset: message.offset }, 'handling failed; trying again until it succeeds');
                },
              }
            : {}),
        },
      );
    } catch (err) {
      if (untilStopped) {
        this.log.warn({ err: (err as Error).message, offset: message.offset }, 'not handled before the consumer stopped; left uncommitted for the next reader');
        return null;
      }
      this.log.warn({ err: (err as Error).message, reqId: first.message.meta[META.id] }, 'giving up on a request past its deadline');
      return [];
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

/** kafkajs's heartbeat failures that mean the group is rebalancing (its own isRebalancing test, which it does not export). */
export function isRebalancing(err: unknown): boolean {
  const type = (err as { type?: unknown } | null)?.type;
  return type === 'REBALANCE_IN_PROGRESS' || type === 'NOT_COORDINATOR_FOR_GROUP' || type === 'ILLEGAL_GENERATION';
}
