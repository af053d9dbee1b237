/**
 * The set of cancelled request ids a consumer holds (docs/async.md, "Cancel"), whatever carries
 * the cancels to it (amqp/cancellations.ts: a stream; kafka/cancellations.ts: a topic). Bounded:
 * CAPACITY ids (about 10 MB at most), each until its request's deadline, clamped to
 * CANCEL_RETENTION_MS; when full, the oldest cancel is evicted (counted), and its request falls
 * back to the deadline skip. Loads no broker client.
 */
import { isRequestId } from '../request-id.js';

/** How far back a consumer reads, and how long the broker keeps a cancel: the longest request deadline. */
export const CANCEL_RETENTION_MS = 24 * 3_600_000;
/** Cancelled ids one consumer holds at most. */
export const CANCELLED_IDS_CAPACITY = 100_000;

/** Ids cancelled, each until its deadline; at most `capacity`, the oldest cancel evicted first. */
export class CancelledIds {
  /** Insertion order is the order of the cancels: the first key is the oldest. */
  private readonly ids = new Map<string, number>();
  evicted = 0;
  /** Ids added since the last sweep: a full set sweeps at most once per capacity/16 of them. */
  private addedSinceSweep = 0;
  /**
   * Walks the ids from the oldest, kept between evictions: a new `keys()` per eviction skips every
   * entry deleted before it, which V8 keeps as holes until the map is rehashed (40,000 evictions
   * from a set of 20,000: 600 ms, against 10 ms). A Map's iterator goes on past deletions and
   * reaches entries added after it; once done it stays done, so a new one is taken then.
   */
  private oldest: Iterator<string> | undefined;

  constructor(
    private readonly capacity: number = CANCELLED_IDS_CAPACITY,
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.ids.size;
  }

  /** True when `id` is newly cancelled (a valid id, its deadline still ahead). */
  add(id: string, deadline: number): boolean {
    const now = this.now();
    if (!isRequestId(id) || !Number.isFinite(deadline) || deadline <= now || this.ids.has(id)) return false;
    // Sweeping scans the whole set: on every add to a full set (a flood read back at start) that
    // was quadratic, on the sidecar's event loop (60,000 cancels into 20,000: 18 s). Amortized
    // here: at most one scan per capacity/16 adds; between scans the oldest cancel is evicted.
    if (this.ids.size >= this.capacity && this.addedSinceSweep >= this.capacity >>> 4) this.sweep();
    this.addedSinceSweep++;
    while (this.ids.size >= this.capacity && this.evictOldest());
    this.ids.set(id, Math.min(deadline, now + CANCEL_RETENTION_MS));
    return true;
  }

  private evictOldest(): boolean {
    let next = this.oldest?.next();
    if (!next || next.done) {
      this.oldest = this.ids.keys();
      next = this.oldest.next();
    }
    if (next.done) return false;
    this.ids.delete(next.value);
    this.evicted++;
    return true;
  }

  has(id: string): boolean {
    const until = this.ids.get(id);
    if (until === undefined) return false;
    if (until > this.now()) return true;
    this.ids.delete(id);
    return false;
  }

  /** Drops the ids whose deadline passed. */
  sweep(): void {
    const now = this.now();
    this.addedSinceSweep = 0;
    for (const [id, until] of this.ids) if (until <= now) this.ids.delete(id);
  }
}

/**
 * A consumer's CancellationWatch over a CancelledIds, swept every 30 s; each backend's reader
 * (amqp/, kafka/) fills `ids` and says how it closes.
 */
export abstract class CancelledIdsWatch {
  protected readonly ids: CancelledIds;
  private readonly sweeper: NodeJS.Timeout;

  constructor(capacity: number = CANCELLED_IDS_CAPACITY) {
    this.ids = new CancelledIds(capacity);
    this.sweeper = setInterval(() => this.ids.sweep(), 30_000);
    this.sweeper.unref();
  }

  get size(): number {
    return this.ids.size;
  }

  get evicted(): number {
    return this.ids.evicted;
  }

  isCancelled(id: string): boolean {
    return this.ids.has(id);
  }

  protected stopSweeping(): void {
    clearInterval(this.sweeper);
  }

  abstract close(): Promise<void>;
}
