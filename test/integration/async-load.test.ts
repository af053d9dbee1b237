/**
 * 10,000 asynchronous submissions under load on the embedded backend (issue
 * 24): 64 clients submit at once while a sidecar (concurrency 32) feeds an app
 * answering in 0–1 ms; every request then has its result (its own body, by
 * long-poll), none is lost, none reaches the app twice unless flagged
 * x-kueuer-redelivered, and the heap returns to its baseline once the results
 * are deleted: a leak of 1 KiB per request (10 MiB) breaks the bound. The
 * responder, sidecar, embedded broker and app share this thread (the clients
 * run in a worker thread); the numbers are printed for docs/async.md.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import v8 from 'node:v8';
import vm from 'node:vm';
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAsyncStack, type AsyncStack } from '../helpers/async-stack.js';
import { metricValue } from '../helpers/stack.js';

const N = 10_000;
const CLIENTS = 64;
/** Heap growth allowed between the baseline and the end, once every result is deleted. */
const HEAP_BOUND_BYTES = 6 * 1024 ** 2;

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

/** heapUsed after full collections (several: finalizers free more on the next one). */
async function settledHeap(): Promise<number> {
  for (let i = 0; i < 4; i++) {
    gc();
    await new Promise((r) => setImmediate(r));
  }
  return process.memoryUsage().heapUsed;
}

/** The app: answers `done <body>` after 0–3 ms; counts each body's calls and how many were flagged redelivered. */
const calls = new Map<string, { n: number; flagged: number }>();
let app: http.Server;
let appPort = 0;
beforeAll(async () => {
  app = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      const c = calls.get(body) ?? { n: 0, flagged: 0 };
      c.n++;
      if (req.headers['x-kueuer-redelivered'] === 'true') c.flagged++;
      calls.set(body, c);
      setTimeout(() => res.end(`done ${body}`), Math.floor(Math.random() * 2));
    });
  });
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  appPort = (app.address() as AddressInfo).port;
});
afterAll(async () => {
  app.closeAllConnections();
  await new Promise((r) => app.close(r));
});

/**
 * The 64 clients, in a worker thread (plain JS): the load generator gets the other CPU, and the
 * heap measured below (this thread's) is the responder's, sidecar's, broker's and app's only.
 * A phase: submit (returns the ids), collect (long-polls each), delete; it returns what went wrong.
 */
const CLIENT = `
const { parentPort } = require('node:worker_threads');
const http = require('node:http');
const agent = new http.Agent({ keepAlive: true, maxSockets: ${CLIENTS} });
function call(base, method, path, body) {
  return new Promise((resolve, reject) => {
    const u = new URL(base);
    const req = http.request({ host: u.hostname, port: u.port, method, path, agent, headers: body === undefined ? {} : { 'content-length': Buffer.byteLength(body) } });
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.end(body);
  });
}
parentPort.on('message', async ({ base, phase, from, to, ids }) => {
  const wrong = [];
  let next = from;
  const one = async (i) => {
    if (phase === 'submit') {
      const r = await call(base, 'POST', '/job', 'job-' + i);
      const m = /([0-9a-f]{32})$/.exec(String(r.headers.location));
      if (r.status !== 202 || !m) wrong.push('job-' + i + ' submit: ' + r.status + ' ' + r.body);
      else ids[i] = m[1];
    } else if (phase === 'collect') {
      const r = await call(base, 'GET', '/.kueuer/requests/' + ids[i] + '?wait=30s');
      if (r.status !== 200 || r.body !== 'done job-' + i || r.headers['x-kueuer-request-id'] !== ids[i])
        wrong.push('job-' + i + ' poll: ' + r.status + ' ' + r.body.slice(0, 200));
    } else {
      const r = await call(base, 'DELETE', '/.kueuer/requests/' + ids[i]);
      if (r.status !== 200) wrong.push('job-' + i + ' delete: ' + r.status + ' ' + r.body);
    }
  };
  await Promise.all(Array.from({ length: ${CLIENTS} }, async () => {
    while (next < to) await one(next++).catch((err) => wrong.push(String(err)));
  }));
  parentPort.postMessage({ ids, wrong });
});
`;

describe('10,000 asynchronous submissions on the embedded backend', () => {
  let s: AsyncStack;
  const stops: Array<() => Promise<void>> = [];
  afterAll(async () => {
    for (const stop of stops) await stop();
    await s?.stop();
  });

  it('every one has its result, none is lost or run twice unflagged, and the heap returns to its baseline', async () => {
    s = await startAsyncStack('memory', { appPort, async: { mode: 'always' }, concurrency: 32, timeoutMs: 120_000 });
    const client = new Worker(CLIENT, { eval: true });
    stops.push(() => client.terminate().then(() => undefined));
    let ids: string[] = [];
    const phase = async (name: 'submit' | 'collect' | 'delete', from: number, to: number): Promise<void> => {
      const reply = new Promise<{ ids: string[]; wrong: string[] }>((resolve) => client.once('message', resolve));
      client.postMessage({ base: s.url, phase: name, from, to, ids });
      const r = await reply;
      expect(r.wrong.slice(0, 5), `${name}: ${r.wrong.length} wrong`).toEqual([]);
      ids = r.ids;
    };
    const submitAll = (from: number, to: number) => phase('submit', from, to);
    const collectAll = (from: number, to: number) => phase('collect', from, to);
    const deleteAll = (from: number, to: number) => phase('delete', from, to);

    // Warm up (JIT, connection pools, the store's maps), then the baseline.
    const WARM = 200;
    await submitAll(0, WARM);
    await collectAll(0, WARM);
    await deleteAll(0, WARM);
    const baseline = { heap: await settledHeap(), rss: process.memoryUsage().rss };

    const started = Date.now();
    let peakRss = 0;
    const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 100);
    await submitAll(WARM, WARM + N);
    const submittedMs = Date.now() - started;
    await collectAll(WARM, WARM + N);
    const doneMs = Date.now() - started;
    clearInterval(sampler);
    const withResults = await settledHeap();
    await deleteAll(WARM, WARM + N);
    const after = { heap: await settledHeap(), rss: process.memoryUsage().rss };

    // None lost: every body reached the app; none twice unless the repeat was flagged redelivered.
    for (let i = 0; i < WARM + N; i++) {
      const c = calls.get(`job-${i}`);
      expect(c, `job-${i}`).toBeDefined();
      expect(c!.n - 1, `job-${i} ran ${c!.n} times, ${c!.flagged} flagged`).toBeLessThanOrEqual(c!.flagged);
    }
    expect(calls.size).toBe(WARM + N);
    const q = { queue: s.queue };
    expect(await metricValue(s.registry, 'kueuer_responder_async_accepted_total', q)).toBe(WARM + N);
    expect(await metricValue(s.registry, 'kueuer_responder_async_completed_total', q)).toBe(WARM + N);
    expect(await metricValue(s.registry, 'kueuer_responder_async_results_dropped_total', q)).toBe(0);

    const mib = (b: number) => (b / 1024 ** 2).toFixed(1);
    console.log(
      `async load: ${N} submissions by ${CLIENTS} clients in ${submittedMs} ms (${Math.round((N * 1000) / submittedMs)}/s), all results in ${doneMs} ms; ` +
        `heap ${mib(baseline.heap)} MiB before, ${mib(withResults)} MiB with ${N} results stored, ${mib(after.heap)} MiB after deleting them; ` +
        `RSS ${mib(baseline.rss)} MiB before, peak ${mib(peakRss)} MiB, ${mib(after.rss)} MiB after; ` +
        `redelivered ${[...calls.values()].reduce((n, c) => n + c.flagged, 0)}`,
    );
    expect(after.heap - baseline.heap).toBeLessThan(HEAP_BOUND_BYTES);
    // While stored, the results take their bytes and a bounded overhead each, not more.
    expect(withResults - baseline.heap).toBeLessThan(N * 4 * 1024);
  }, 120_000);
});
