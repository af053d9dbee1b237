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
import { closedLoop, percentile } from './bench-closed-loop.js';

const [origin = '', concurrencyArg = '1', secondsArg = '1'] = process.argv.slice(2);
const concurrency = Number(concurrencyArg);
const pool = new Pool(origin, { connections: concurrency, pipelining: 1 });
const latencies: number[] = [];
const body = JSON.stringify({ hello: 'kueuer', n: 42 });

const { errors, seconds } = await closedLoop(concurrency, Number(secondsArg), async () => {
  const t0 = performance.now();
  const res = await pool.request({ method: 'POST', path: '/bench?x=1', body, headers: { 'content-type': 'application/json' } });
  await res.body.arrayBuffer();
  if (res.statusCode !== 200) return false;
  latencies.push(performance.now() - t0);
  return true;
});
await pool.close();
console.log(JSON.stringify({ requests: latencies.length, errors, seconds, p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99) }));
