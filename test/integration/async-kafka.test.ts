/**
 * Asynchronous requests on Kafka (docs/async.md, docs/kafka.md "Asynchronous
 * results"): the app's answers go to the queue's replicated results topic
 * `kueuer.reply.<queue>.async`, read by every responder replica of the queue
 * as one consumer group, whose offset moves only past stored results. A
 * replica closed between submit and poll loses nothing (another stores and
 * answers); a sidecar SIGKILLed mid-request has its request redelivered and
 * the poll gets exactly one result; a store that fails keeps the result in
 * the topic (tried again, never committed past) until a store takes it; the
 * reply-topic sweeper never deletes a results topic.
 */
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { asyncResultsAddress } from '../../responder/async/results.js';
import { MemoryAsyncStore, type AsyncStore } from '../../responder/async/store.js';
import type { KafkaTransport } from '../../shared/transport/kafka/transport.js';
import { readReplication } from '../../shared/transport/kafka/topics.js';
import { startAsyncStack, type AsyncStack } from '../helpers/async-stack.js';
import { request, type RawResponse } from '../helpers/http.js';
import { committedPositions, kafkaClient } from '../helpers/kafka.js';
import { msgIs, spawnKueuer, type KueuerProcess } from '../helpers/processes.js';
import { metricValue, newTransport, uniqueQueue, waitFor } from '../helpers/stack.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';

const kafkaUrl = inject('kafkaUrl');
const kafka = kafkaClient(kafkaUrl);

let app: TestApp;
/** Requests the app holds until released (paths under /held). */
const held: Array<() => void> = [];
/** Per path: whether each call carried x-kueuer-redelivered. */
const calls = new Map<string, boolean[]>();
beforeAll(async () => {
  app = await startTestApp();
  app.handle((req, res) => {
    const redelivered = req.headers['x-kueuer-redelivered'] === 'true';
    calls.set(req.url, [...(calls.get(req.url) ?? []), redelivered]);
    const call = calls.get(req.url)!.length;
    const answer = () => {
      res.setHeader('X-App', 'yes');
      res.end(`done ${req.url} ${req.body.toString()} call ${call} redelivered ${redelivered}`);
    };
    // /held/once: only the first call is held (its sidecar dies with it); a rerun is answered.
    if (req.url.startsWith('/held/once') && call > 1) answer();
    else if (req.url.startsWith('/held')) held.push(answer);
    else answer();
  });
});
afterAll(async () => app.close());

const cleanups: Array<() => Promise<void>> = [];
const processes: KueuerProcess[] = [];
afterEach(async () => {
  for (const p of processes.splice(0)) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  for (const f of held.splice(0)) f();
  for (const c of cleanups.splice(0).reverse()) await c();
});

function sharedStore(): MemoryAsyncStore {
  const s = new MemoryAsyncStore(1 << 24);
  cleanups.push(() => s.close());
  return s;
}

async function replica(queue: string, store: AsyncStore, withSidecar = true, timeoutMs = 30_000): Promise<AsyncStack> {
  const s = await startAsyncStack('kafka', { appPort: app.port, queue, async: { mode: 'on-request' }, store, withSidecar, timeoutMs });
  cleanups.push(() => s.stop()); // startAsyncStack waits until the sidecar holds its partitions (kafka-settled.ts)
  return s;
}

async function submit(s: AsyncStack, path: string, body = 'b'): Promise<string> {
  const res = await request(s.url, { method: 'POST', path, headers: { prefer: 'respond-async' }, body });
  expect(res.status, res.body.toString()).toBe(202);
  return /\/\.kueuer\/requests\/([0-9a-f]{32})$/.exec(String(res.headers.location))![1]!;
}

/** Long-polls until the result is there (a pending 202 polls again), for up to `ms`. */
async function pollDone(s: AsyncStack, id: string, ms = 40_000): Promise<RawResponse> {
  const until = Date.now() + ms;
  for (;;) {
    const r = await request(s.url, { path: `/.kueuer/requests/${id}?wait=10s` });
    if (r.status !== 202 || Date.now() > until) {
      expect(r.status, r.body.toString()).toBe(200);
      return r;
    }
  }
}

describe('asynchronous requests on Kafka', () => {
  it('the results topic is replicated as the request topics are, with one partition, and the sweeper never deletes it', { timeout: 60_000 }, async () => {
    const queue = uniqueQueue('kasync');
    const s = await replica(queue, sharedStore());
    const id = await submit(s, '/first');
    await pollDone(s, id);
    const topic = asyncResultsAddress(queue);
    const admin = kafka.admin();
    await admin.connect();
    cleanups.push(() => admin.disconnect());
    const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
    expect(topics[0]!.partitions).toHaveLength(1);
    // One broker here: RF 1 and min.insync.replicas 1, capped as for the request topic (topics.ts).
    expect(await readReplication(admin, topic)).toEqual(await readReplication(admin, `kueuer.${queue}`));
    // Every responder of the queue gone: the results topic's group has no member, but results may still wait in it.
    await s.stop();
    const sweeper = (await newTransport('kafka')) as KafkaTransport;
    cleanups.push(() => sweeper.close());
    const mine = (t: string) => t === topic;
    expect(await sweeper.sweepAbandonedInboxes(0, mine)).toEqual([]);
    await new Promise((r) => setTimeout(r, 50));
    expect(await sweeper.sweepAbandonedInboxes(0, mine)).toEqual([]);
    expect(await admin.listTopics()).toContain(topic);
  });

  it('a replica closed between submit and poll: the other replica stores the answer and answers the poll', { timeout: 90_000 }, async () => {
    const queue = uniqueQueue('kasync');
    const store = sharedStore();
    const a = await replica(queue, store);
    const b = await replica(queue, store, false);
    const id = await submit(a, '/held/job', 'payload');
    await waitFor(() => held.length === 1, 20_000, 'the app to get the request');
    // Replica A is gone (HTTP server, results consumer and broker connection) before the app answers.
    await a.stopResponder();
    await a.transport.close();
    held.shift()!();
    const done = await pollDone(b, id);
    expect(done.body.toString()).toBe('done /held/job payload call 1 redelivered false');
    expect(done.headers['x-app']).toBe('yes');
    expect(done.headers['x-kueuer-request-id']).toBe(id);
    expect(await metricValue(b.registry, 'kueuer_responder_async_completed_total', { queue })).toBe(1);
  });

  it('a sidecar SIGKILLed mid-request: the request is redelivered, and the poll gets exactly one result', { timeout: 120_000 }, async () => {
    const queue = uniqueQueue('kasync');
    const s = await replica(queue, sharedStore(), false, 60_000);
    const sidecar = (): Promise<KueuerProcess> => {
      const p = spawnKueuer(['sidecar', '--app', `127.0.0.1:${app.port}`, '--admin-listen', '127.0.0.1:0', '--backend', kafkaUrl, '--queue', queue]);
      processes.push(p);
      // Joined, so its first request is not one a previous owner may have started (flagged redelivered).
      return p.waitForLog(msgIs('joined the consumer group'), 60_000).then(() => p);
    };
    const doomed = await sidecar();
    const id = await submit(s, '/held/once', 'x');
    await waitFor(() => held.length === 1, 30_000, 'the app to get the request');
    doomed.child.kill('SIGKILL');
    await sidecar();
    const done = await pollDone(s, id, 60_000);
    expect(done.body.toString()).toBe('done /held/once x call 2 redelivered true');
    expect(calls.get('/held/once')).toEqual([false, true]);
    // The held first call answers now: its sidecar is dead, so nothing more reaches the results topic.
    held.shift()!();
    await new Promise((r) => setTimeout(r, 1_000));
    expect((await pollDone(s, id)).body.toString()).toBe('done /held/once x call 2 redelivered true');
    expect(await metricValue(s.registry, 'kueuer_responder_async_completed_total', { queue })).toBe(1);
    expect(await metricValue(s.registry, 'kueuer_responder_async_results_dropped_total', { queue })).toBe(0);
  });

  it('a store that fails keeps the result in the topic: tried again, never committed past, stored by the next replica', { timeout: 90_000 }, async () => {
    const queue = uniqueQueue('kasync');
    const store = sharedStore();
    let failures = 0;
    const failing: AsyncStore = Object.assign(Object.create(store) as AsyncStore, {
      complete: async () => {
        failures++;
        throw new Error('store down');
      },
    });
    const a = await replica(queue, failing);
    const id = await submit(a, '/kept', 'kept');
    // A's store refuses the result again and again; its offset must not move past it.
    await waitFor(() => failures >= 3, 20_000, 'the result to be tried again');
    const group = asyncResultsAddress(queue);
    expect([...(await committedPositions(kafka, group, group)).values()].every((o) => o <= 0n)).toBe(true);
    await a.stopResponder();
    await a.transport.close();
    expect([...(await committedPositions(kafka, group, group)).values()].every((o) => o <= 0n)).toBe(true);
    const b = await replica(queue, store, false);
    const done = await pollDone(b, id);
    expect(done.body.toString()).toBe('done /kept kept call 1 redelivered false');
    expect(calls.get('/kept')).toEqual([false]);
  });
});
