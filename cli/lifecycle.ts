import type { Logger } from 'pino';
import { neverWaitForLogs } from '../shared/logger.js';

/** Logging must never stop a shutdown: a line that cannot be written is lost, not thrown. */
function tryLog(write: () => void): void {
  try {
    write();
  } catch {
    // stdout is gone or refused the line; carry on stopping.
  }
}

/**
 * Runs `shutdown` once on SIGTERM or SIGINT, then exits 0 (1 if shutdown
 * failed). A second signal while draining exits at once. From the first
 * signal on, no log line waits for stdout.
 */
export function exitOnSignal(log: Logger, shutdown: () => Promise<void>): void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    neverWaitForLogs();
    if (stopping) {
      tryLog(() => log.warn({ signal }, 'second signal while draining; exiting now'));
      process.exit(1);
    }
    stopping = true;
    tryLog(() => log.info({ signal }, 'draining'));
    shutdown().then(
      () => {
        tryLog(() => log.info('stopped cleanly'));
        process.exit(0);
      },
      (err: unknown) => {
        tryLog(() => log.error({ err: (err as Error).message }, 'shutdown failed'));
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}
