/**
 * Asynchronous requests in `npm run bench` (issue 24): one `kueuer local`
 * with kueuer.io/async on-request (scripts/bench/bench-async-server.ts) in front of
 * the benchmark's apps, on the embedded broker and on RabbitMQ; at each load,
 * the same closed loop of jobs sent synchronously and asynchronously
 * (scripts/bench/bench-async-client.ts: submit, then long-poll the Location), in the
 * same run. A row: jobs/s, submit p50/p99 (sync: the whole request), job
 * p50/p99 (submit to answer), and the µs of CPU per job of the Kueuer process.
 */
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { cpuSeconds } from './bench-load.js';
import type { Netns } from './bench-netns.js';
import { waitHttp } from './bench-processes.js';

export interface AsyncApp {
  label: string;
  port: number;
  concurrencies: number[];
}

export interface AsyncRow {
  app: string;
  backend: string;
  mode: 'sync' | 'async';
  concurrency: number;
  jobsPerSecond: number;
  submitP50: number;
  submitP99: number;
  jobP50: number;
  jobP99: number;
  cpuUsPerJob: number;
  errors: number;
}

interface ClientResult {
  jobs: number;
  errors: number;
  seconds: number;
  submitP50: number;
  submitP99: number;
  jobP50: number;
  jobP99: number;
}

function runClient(netns: Netns, root: string, origin: string, c: number, seconds: number, mode: 'sync' | 'async'): ClientResult {
  const out = netns.run(process.execPath, [join(root, 'dist/scripts/bench/bench-async-client.js'), origin, String(c), String(seconds), mode]);
  return JSON.parse(out.trim().split('\n').pop() ?? '') as ClientResult;
}

/** Every row: for each backend and app, sync then async at each concurrency, after a warm-up of each. */
export async function benchAsync(
  netns: Netns,
  root: string,
  apps: AsyncApp[],
  backends: Array<{ label: string; url: () => Promise<string> }>,
  timing: { seconds: number; warmupSeconds: number },
  children: ChildProcess[],
): Promise<AsyncRow[]> {
  const rows: AsyncRow[] = [];
  for (const backend of backends) {
    for (const app of apps) {
      const port = 18095;
      const server = netns.spawn(
        process.execPath,
        [
          join(root, 'dist/scripts/bench/bench-async-server.js'),
          '--listen',
          `127.0.0.1:${port}`,
          '--admin-listen',
          `127.0.0.1:${port + 100}`,
          '--app',
          `127.0.0.1:${app.port}`,
          '--backend',
          await backend.url(),
          '--queue',
          `bench-async-${Date.now()}`,
          '--concurrency',
          '64',
        ],
        { cwd: root },
      );
      children.push(server);
      try {
        await waitHttp(netns, `http://127.0.0.1:${port + 100}/readyz`, 60_000);
        const origin = `http://127.0.0.1:${port}`;
        for (const c of app.concurrencies) {
          for (const mode of ['sync', 'async'] as const) {
            if (timing.warmupSeconds > 0) runClient(netns, root, origin, c, timing.warmupSeconds, mode);
            const before = cpuSeconds(server.pid!);
            const r = runClient(netns, root, origin, c, timing.seconds, mode);
            const cpu = cpuSeconds(server.pid!) - before;
            const row: AsyncRow = {
              app: app.label,
              backend: backend.label,
              mode,
              concurrency: c,
              jobsPerSecond: r.jobs / r.seconds,
              submitP50: r.submitP50,
              submitP99: r.submitP99,
              jobP50: r.jobP50,
              jobP99: r.jobP99,
              cpuUsPerJob: r.jobs > 0 ? (cpu * 1e6) / r.jobs : NaN,
              errors: r.errors,
            };
            rows.push(row);
            console.log(
              `${app.label.padEnd(10)} async bench (${backend.label}) ${mode.padEnd(5)} c=${String(c).padEnd(3)} ${row.jobsPerSecond.toFixed(0).padStart(6)} jobs/s  submit p50 ${row.submitP50.toFixed(2)} p99 ${row.submitP99.toFixed(2)} ms  job p50 ${row.jobP50.toFixed(2)} p99 ${row.jobP99.toFixed(2)} ms  CPU ${row.cpuUsPerJob.toFixed(0)} µs/job  errors ${row.errors}`,
            );
          }
        }
      } finally {
        server.kill('SIGKILL');
      }
    }
  }
  return rows;
}

const fmt = (n: number, digits = 0): string => (Number.isFinite(n) ? n.toFixed(digits) : '–');

/** The table of docs/benchmarks.md, each async row with its ratio to the sync row beside it. */
export function asyncTable(rows: AsyncRow[]): string[] {
  const out = [
    '| app | backend | c | mode | jobs/s | vs sync | submit p50 ms | submit p99 ms | job p50 ms | job p99 ms | CPU µs/job (Kueuer) | errors |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    const sync = rows.find((s) => s.mode === 'sync' && s.app === r.app && s.backend === r.backend && s.concurrency === r.concurrency);
    const ratio = r.mode === 'async' && sync ? `${((r.jobsPerSecond / sync.jobsPerSecond) * 100).toFixed(0)}%` : '';
    out.push(
      `| ${r.app} | ${r.backend} | ${r.concurrency} | ${r.mode} | ${fmt(r.jobsPerSecond)} | ${ratio} | ${fmt(r.submitP50, 2)} | ${fmt(r.submitP99, 2)} | ${fmt(r.jobP50, 2)} | ${fmt(r.jobP99, 2)} | ${fmt(r.cpuUsPerJob)} | ${r.errors} |`,
    );
  }
  return out;
}
