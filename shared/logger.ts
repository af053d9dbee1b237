import { pino, type DestinationStream, type Logger } from 'pino';
import type { LogLevel } from './common-options.js';

/** How long a log write may wait for a stdout pipe nobody reads before lines are held back instead. */
const STALL_BUDGET_MS = 1000;
/** Log bytes held while stdout does not take them; past this, lines are dropped. */
const MAX_HELD_BYTES = 8 * 1024 * 1024;

let stdout: DestinationStream | undefined;
let stalledSince = 0;
let neverWait = false;

/**
 * stdout as a log destination that never holds the process up. pino's default
 * writes synchronously and, when the pipe is full (a reader that stopped
 * reading), retries forever: the event loop, and with it SIGTERM handling,
 * stops. Here a write waits at most STALL_BUDGET_MS per stall (none once
 * shutdown began); then lines are kept (up to MAX_HELD_BYTES) until the pipe
 * drains. A closed pipe (EPIPE, e.g. `| head -2`) turns logging off.
 */
function stdoutDestination(): DestinationStream {
  const dest = pino.destination({
    // Opening process.stdout makes a pipe's fd non-blocking, so a full pipe answers EAGAIN instead of blocking the thread.
    dest: process.stdout.fd ?? 1,
    sync: true,
    maxLength: MAX_HELD_BYTES,
    retryEAGAIN: () => {
      const now = Date.now();
      stalledSince ||= now;
      return !neverWait && now - stalledSince < STALL_BUDGET_MS;
    },
  });
  // After a wait sonic-boom reports a write of 0 bytes: only bytes taken end a stall.
  dest.on('write', (n: number) => {
    if (n > 0) stalledSince = 0;
  });
  dest.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') dest.write = () => true;
  });
  return dest;
}

/** From now on no log write waits for stdout (called when shutdown begins). */
export function neverWaitForLogs(): void {
  neverWait = true;
}

/** Structured JSON logs; request-path lines carry `reqId`. */
export function createLogger(component: string, level: LogLevel): Logger {
  stdout ??= stdoutDestination();
  return pino({ level, base: { component } }, stdout);
}
