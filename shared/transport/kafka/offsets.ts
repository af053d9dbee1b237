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
    if (this.next === this.fetched)
      this.next = offset; // nothing pending: jump the gap
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
