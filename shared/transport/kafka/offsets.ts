/**
 * Per partition: which offsets are done, and the lowest one not yet done.
 * `complete` returns the new commit position when it moved.
 */
export class ContiguousOffsets {
  private readonly done = new Set<bigint>();
  /** One past the highest offset dispatched. */
  private fetched: bigint;
  private readonly startedAt: bigint;
  /**
   * @param next the committed position this member starts from.
   * @param replayBelow the partition's end offset when this member got it: records in
   *   [next, replayBelow) may have been started by the previous owner, whose commit never
   *   came (it died, or its commit failed while the group coordinator moved).
   */
  constructor(
    private next: bigint,
    private readonly replayBelow: bigint = next,
  ) {
    this.fetched = next;
    this.startedAt = next;
  }

  /** Whether a record may have reached the app before (it is delivered with redelivered: true). */
  mayHaveRun(offset: bigint): boolean {
    return offset >= this.startedAt && offset < this.replayBelow;
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
  dispatched(offset: bigint): boolean {
    // Fetched again after a rejoin that kept this partition (kafkajs resumes from the committed
    // position): this member already runs or ran it, and commits it itself.
    if (offset < this.fetched) return false;
    if (this.next === this.fetched)
      this.next = offset; // nothing pending: jump the gap
    else for (let o = this.fetched; o < offset; o++) this.done.add(o);
    this.fetched = offset + 1n;
    return true;
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

/**
 * After a failed offset commit: its positions go back into the pending ones, unless a newer
 * position for the partition is already pending or this member no longer owns the partition.
 */
export function requeueFailedCommits(failed: Array<[number, bigint]>, pending: Map<number, bigint>, owned: (partition: number) => boolean): void {
  for (const [partition, offset] of failed) {
    const newer = pending.get(partition);
    if (owned(partition) && (newer === undefined || newer < offset)) pending.set(partition, offset);
  }
}
