/**
 * The undici load generator of `npm run bench`, as its own process (so it can
 * run inside the benchmark's network namespace and its CPU is its own):
 * `concurrency` workers, each sending the next request when the last one is
 * answered, for `seconds`. Prints one JSON line: requests, errors, elapsed
 * seconds, p50 and p99 in ms.
 *
 *   node dist/scripts/bench/bench-undici.js ORIGIN CONCURRENCY SECONDS
 */
import { Pool } from 'undici';

const [origin = '', concurrencyArg = '1', secondsArg = '1'] = process.argv.slice(2);
const concurrency = Number(concurrencyArg);
const pool = new Pool(origin, { connections: concurrency, pipelining: 1 });
const latencies: number[] = [];
let errors = 0;
const body = JSON.stringify({ hello: 'kueuer', n: 42 });
const until = performance.now() + Number(secondsArg) * 1000;

async function worker(): Promise<void> {
  while (performance.now() < until) {
    const t0 = performance.now();
    try {
      const res = await pool.request({ method: 'POST', path: '/bench?x=1', body, headers: { 'content-type': 'application/json' } });
      await res.body.arrayBuffer();
      if (res.statusCode !== 200) errors++;
      else latencies.push(performance.now() - t0);
    } catch {
      errors++;
    }
  }
}

const started = performance.now();
await Promise.all(Array.from({ length: concurrency }, worker));
const elapsed = (performance.now() - started) / 1000;
await pool.close();
latencies.sort((a, b) => a - b);
const pct = (p: number): number => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? NaN;
console.log(JSON.stringify({ requests: latencies.length, errors, seconds: elapsed, p50: pct(0.5), p99: pct(0.99) }));
