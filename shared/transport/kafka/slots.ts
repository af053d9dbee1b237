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
  /**
   * Takes a slot, waiting for one if none is free. Resolves false, holding no slot, if `signal`
   * aborts first (a rebalance: the batch stops waiting so its member can rejoin at once).
   */
  async acquire(signal?: AbortSignal): Promise<boolean> {
    if (signal?.aborted) return false;
    if (this.free > 0) {
      this.free--;
      return true;
    }
    if (!this.full) {
      this.full = true;
      this.onFull();
    }
    return new Promise<boolean>((resolve) => {
      const granted = () => {
        signal?.removeEventListener('abort', withdraw);
        resolve(true);
      };
      // Withdrawn before release() handed it a slot: nothing to give back.
      const withdraw = () => {
        const at = this.waiters.indexOf(granted);
        if (at < 0) return;
        this.waiters.splice(at, 1);
        resolve(false);
      };
      this.waiters.push(granted);
      signal?.addEventListener('abort', withdraw, { once: true });
    });
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
