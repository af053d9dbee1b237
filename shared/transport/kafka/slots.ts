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
