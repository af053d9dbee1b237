import type { Logger } from 'pino';
import { onFatal } from '../shared/fatal.js';
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
 * signal on, no log line waits for stdout. A fatal failure (shared/fatal.ts,
 * e.g. the broker refusing the credentials on a reconnect) is written to
 * stderr as one line, then the same shutdown runs and the process exits 1.
 */
export function exitOnSignal(log: Logger, shutdown: () => Promise<void>): void {
  let stopping = false;
  const stop = (exitCode: number): void => {
    shutdown().then(
      () => {
        tryLog(() => log.info('stopped cleanly'));
        process.exit(exitCode);
      },
      (err: unknown) => {
        tryLog(() => log.error({ err: (err as Error).message }, 'shutdown failed'));
        process.exit(1);
      },
    );
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    neverWaitForLogs();
    if (stopping) {
      tryLog(() => log.warn({ signal }, 'second signal while draining; exiting now'));
      process.exit(1);
    }
    stopping = true;
    tryLog(() => log.info({ signal }, 'draining'));
    stop(0);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  onFatal((err) => {
    if (stopping) return;
    stopping = true;
    tryLog(() => process.stderr.write(`kueuer ${String(log.bindings().component ?? '')}: ${err.message}\n`));
    tryLog(() => log.fatal({ code: err.code }, `${err.message}; stopping`));
    stop(1);
  });
}
