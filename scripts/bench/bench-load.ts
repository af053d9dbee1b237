/**
 * One measurement of `npm run bench`: a load generator (wrk or undici) run
 * inside the benchmark's network namespace against one origin, with the CPU
 * time of the processes on the path, of the broker and of the app read from
 * /proc/<pid>/stat before and after, so each row can say how many µs of CPU
 * a request cost there.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Netns } from './bench-netns.js';

export type Generator = 'wrk' | 'undici';

export interface LoadResult {
  requests: number;
  errors: number;
  rps: number;
  p50: number;
  p99: number;
}

/** The processes whose CPU is counted for a row. */
export interface PathPids {
  /** Kueuer's or queue-proxy's own processes (none for direct). */
  proxy: number[];
  broker: number[];
  app: number[];
}

export interface Measurement extends LoadResult {
  generator: Generator;
  concurrency: number;
  /** µs of CPU per answered request, per group of processes. */
  cpuUs: { proxy: number; broker: number; app: number };
}

const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());

/** utime + stime of one process, in seconds (0 when it is gone). */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which is in parentheses and may hold spaces.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return 0;
  }
}

const sum = (pids: number[]): number => pids.reduce((s, p) => s + cpuSeconds(p), 0);

function runWrk(netns: Netns, root: string, origin: string, concurrency: number, seconds: number): LoadResult {
  const out = netns.run('wrk', [
    '-t1',
    `-c${concurrency}`,
    `-d${seconds}s`,
    '--timeout',
    '10s',
    '-s',
    join(root, 'scripts/bench/bench-wrk.lua'),
    `${origin}/bench?x=1`,
  ]);
  const line = out.trim().split('\n').pop() ?? '';
  const r = JSON.parse(line) as { requests: number; durationUs: number; errors: number; p50Us: number; p99Us: number };
  return { requests: r.requests, errors: r.errors, rps: r.requests / (r.durationUs / 1e6), p50: r.p50Us / 1000, p99: r.p99Us / 1000 };
}

function runUndici(netns: Netns, root: string, origin: string, concurrency: number, seconds: number): LoadResult {
  const out = netns.run(process.execPath, [join(root, 'dist/scripts/bench/bench-undici.js'), origin, String(concurrency), String(seconds)]);
  const r = JSON.parse(out.trim().split('\n').pop() ?? '') as { requests: number; errors: number; seconds: number; p50: number; p99: number };
  return { requests: r.requests, errors: r.errors, rps: r.requests / r.seconds, p50: r.p50, p99: r.p99 };
}

/** Warm-up (not counted), then the measured run with the CPU of every process on the path. */
export function measureOnce(
  netns: Netns,
  root: string,
  generator: Generator,
  origin: string,
  concurrency: number,
  timing: { seconds: number; warmupSeconds: number },
  pids: PathPids,
): Measurement {
  const run = generator === 'wrk' ? runWrk : runUndici;
  if (timing.warmupSeconds > 0) run(netns, root, origin, concurrency, timing.warmupSeconds);
  const before = { proxy: sum(pids.proxy), broker: sum(pids.broker), app: sum(pids.app) };
  const r = run(netns, root, origin, concurrency, timing.seconds);
  const perRequest = (after: number, start: number): number => (r.requests > 0 ? ((after - start) * 1e6) / r.requests : NaN);
  return {
    ...r,
    generator,
    concurrency,
    cpuUs: {
      proxy: perRequest(sum(pids.proxy), before.proxy),
      broker: perRequest(sum(pids.broker), before.broker),
      app: perRequest(sum(pids.app), before.app),
    },
  };
}
