/**
 * The asynchronous load generator of `npm run bench`, as its own process:
 * `concurrency` workers, each running one job after another for `seconds`.
 * sync: a POST answered by the app's answer. async: the same POST with
 * `Prefer: respond-async` (the submit: 202 and a Location), then a long poll
 * of the Location (`?wait=30s`) until the app's answer. Prints one JSON line:
 * jobs done, errors, elapsed seconds, and p50/p99 in ms of the submit (sync:
 * the whole request) and of the whole job.
 *
 *   node dist/scripts/bench/bench-async-client.js ORIGIN CONCURRENCY SECONDS sync|async
 */
import { Pool } from 'undici';
import { closedLoop, percentile } from './bench-closed-loop.js';

const [origin = '', concurrencyArg = '1', secondsArg = '1', mode = 'sync'] = process.argv.slice(2);
const concurrency = Number(concurrencyArg);
const pool = new Pool(origin, { connections: concurrency, pipelining: 1 });
const submits: number[] = [];
const jobs: number[] = [];
const body = JSON.stringify({ hello: 'kueuer', n: 42 });
const headers = { 'content-type': 'application/json', ...(mode === 'async' ? { prefer: 'respond-async' } : {}) };

async function job(): Promise<boolean> {
  const t0 = performance.now();
  const res = await pool.request({ method: 'POST', path: '/bench?x=1', body, headers });
  await res.body.arrayBuffer();
  const submitted = performance.now();
  if (mode === 'sync') {
    if (res.statusCode !== 200) return false;
    submits.push(submitted - t0);
    jobs.push(submitted - t0);
    return true;
  }
  const location = res.headers.location;
  if (res.statusCode !== 202 || typeof location !== 'string') return false;
  submits.push(submitted - t0);
  for (;;) {
    const poll = await pool.request({ method: 'GET', path: `${location}?wait=30s` });
    await poll.body.arrayBuffer();
    if (poll.statusCode === 202) continue;
    if (poll.statusCode !== 200) return false;
    jobs.push(performance.now() - t0);
    return true;
  }
}

const { errors, seconds } = await closedLoop(concurrency, Number(secondsArg), job);
await pool.close();
console.log(
  JSON.stringify({
    jobs: jobs.length,
    errors,
    seconds,
    submitP50: percentile(submits, 0.5),
    submitP99: percentile(submits, 0.99),
    jobP50: percentile(jobs, 0.5),
    jobP99: percentile(jobs, 0.99),
  }),
);
