/** Long polls waiting on a request's result, by key: woken when it is stored or removed, or at their time limit. */
export class Waiters {
  private readonly byKey = new Map<string, Set<() => void>>();

  /** Resolves when `wake(key)` runs or after `ms`; `started` gets the function that ends this wait early. */
  wait(key: string, ms: number, started: (done: () => void) => void = () => undefined): Promise<void> {
    return new Promise<void>((resolve) => {
      const set = this.byKey.get(key) ?? new Set();
      this.byKey.set(key, set);
      const done = (): void => {
        clearTimeout(timer);
        set.delete(done);
        if (set.size === 0) this.byKey.delete(key);
        resolve();
      };
      const timer = setTimeout(done, ms);
      set.add(done);
      started(done);
    });
  }

  wake(key: string): void {
    for (const w of [...(this.byKey.get(key) ?? [])]) w();
  }

  wakeAll(): void {
    for (const key of [...this.byKey.keys()]) this.wake(key);
  }
}
