import type { Logger } from 'pino';

/**
 * Runs `shutdown` once on SIGTERM or SIGINT, then exits 0 (1 if shutdown
 * failed). A second signal while draining exits at once.
 */
export function exitOnSignal(log: Logger, shutdown: () => Promise<void>): void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) {
      log.warn({ signal }, 'second signal while draining; exiting now');
      process.exit(1);
    }
    stopping = true;
    log.info({ signal }, 'draining');
    shutdown().then(
      () => {
        log.info('stopped cleanly');
        process.exit(0);
      },
      (err: unknown) => {
        log.error({ err: (err as Error).message }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}
