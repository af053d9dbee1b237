/**
 * The one poll helper of the tests: runs `check` until it returns something
 * truthy (which it resolves with), or fails after `timeoutMs` naming `what`.
 * For a process being started, `child` fails it at once when the process
 * exits and `logFile`'s tail goes into the failure.
 */
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface PollOptions {
  /** Between checks (default 20 ms). */
  intervalMs?: number;
  /** A check that throws counts as "not yet" (e.g. a server not listening yet) instead of failing the wait. */
  tolerateErrors?: boolean;
  /** The process being waited for: its exit fails the wait at once. */
  child?: ChildProcess;
  /** Its log, whose last 30 lines go into the failure. */
  logFile?: string;
  /** More to say in the failure (e.g. the state last seen). */
  describeState?: () => string;
}

function logTail(logFile: string): string {
  try {
    return readFileSync(logFile, 'utf8').split('\n').slice(-30).join('\n');
  } catch {
    return '';
  }
}

export async function waitFor<T>(check: () => T | Promise<T>, timeoutMs: number, what: string, o: PollOptions = {}): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = o.tolerateErrors
      ? await Promise.resolve()
          .then(check)
          .catch(() => undefined)
      : await check();
    if (value) return value;
    const exited = o.child && (o.child.exitCode !== null || o.child.signalCode !== null);
    if (exited || Date.now() > until) {
      const why = exited
        ? `${what}: the process exited (${o.child!.exitCode ?? o.child!.signalCode}) first`
        : `timed out after ${timeoutMs} ms waiting for ${what}`;
      const state = o.describeState ? `\n${o.describeState()}` : '';
      throw new Error(`${why}${state}${o.logFile ? `; its log ends:\n${logTail(o.logFile)}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, o.intervalMs ?? 20));
  }
}
