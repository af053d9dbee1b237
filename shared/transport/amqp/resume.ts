/** Re-attaching a consumer or inbox the broker cancelled while its connection lives on, with backoff. */
import type { Logger } from 'pino';

const RESUME_FIRST_MS = 250;
const RESUME_MAX_MS = 5_000;

/**
 * Runs `attempt` after a delay that doubles from 250 ms to 5 s while it fails. `attempt` resolves
 * false when there is nothing to do (no connection: the transport re-attaches everything when it
 * reconnects; stopping; already attached).
 */
export class Resumer {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly attempt: () => Promise<boolean>,
    private readonly log: Logger,
    private readonly what: string,
    private readonly fields: Record<string, unknown>,
  ) {}

  start(delayMs = RESUME_FIRST_MS): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.attempt().then(
        (resumed) => {
          if (resumed) this.log.info(this.fields, `${this.what} resumed`);
        },
        (err: unknown) => {
          const next = Math.min(RESUME_MAX_MS, delayMs * 2);
          this.log.warn({ ...this.fields, err: (err as Error).message, retryInMs: next }, `${this.what} could not resume yet`);
          this.start(next);
        },
      );
    }, delayMs);
    this.timer.unref();
  }

  cancel(): void {
    clearTimeout(this.timer);
  }
}
