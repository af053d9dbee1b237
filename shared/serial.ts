/**
 * Runs tasks one at a time, in the order they were asked for, so a burst of
 * changes is applied in order and never concurrently. A task that fails is
 * handed to `onError` and does not stop the ones queued after it.
 */
export class SerialRuns {
  private tail: Promise<void> = Promise.resolve();

  constructor(private readonly onError: (err: unknown) => void) {}

  /** Queues `task` after every run asked for before it; resolves (never rejects) once it has run. */
  run(task: () => Promise<void>): Promise<void> {
    this.tail = this.tail.then(task).catch((err: unknown) => this.onError(err));
    return this.tail;
  }

  /** Resolves once every run asked for so far has finished. */
  idle(): Promise<void> {
    return this.tail;
  }
}
