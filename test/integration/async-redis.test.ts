/**
 * Asynchronous requests on the shared Redis store (docs/async.md), RabbitMQ
 * as the broker: any responder replica answers any poll, a replica killed
 * between submit and poll loses nothing (the answer reaches the store through
 * the queue's shared results address), a responder restart keeps accepted
 * requests and results, and an idempotency key holds across replicas.
 */
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { RedisAsyncStore } from '../../responder/async/redis-store.js';
import { MemoryAsyncStore } from '../../responder/async/store.js';
import { startAsyncStack, type AsyncStack } from '../helpers/async-stack.js';
import { json, request, type RawResponse } from '../helpers/http.js';
import { silentLog, uniqueQueue, waitFor } from '../helpers/stack.js';
import { delay, startTestApp, type TestApp } from '../helpers/test-app.js';

let app: TestApp;
const held: Array<() => void> = [];
beforeAll(async () => {
  app = await startTestApp();
  app.handle((req, res) => {
    const answer = () => {
      res.setHeader('X-App', 'yes');
      res.statusCode = 200;
      res.end(`done ${req.url} ${req.body.toString()}`);
    };
    if (req.url.startsWith('/held')) held.push(answer);
    else answer();
  });
});
afterAll(async () => app.close());

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const f of held.splice(0)) f();
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function store(): Promise<RedisAsyncStore> {
  const s = new RedisAsyncStore(inject('redisUrl'), silentLog);
  await s.ready(10_000);
  cleanups.push(() => s.close());
  return s;
}

async function replica(queue: string, withSidecar = true): Promise<AsyncStack> {
  const s = await startAsyncStack('amqp', { appPort: app.port, queue, async: { mode: 'on-request' }, store: await store(), withSidecar });
  cleanups.push(() => s.stop());
  return s;
}

async function submit(s: AsyncStack, path: string, headers: Record<string, string> = {}, body = 'b'): Promise<string> {
  const res = await request(s.url, { method: 'POST', path, headers: { prefer: 'respond-async', ...headers }, body });
  expect(res.status, res.body.toString()).toBe(202);
  return /\/\.kueuer\/requests\/([0-9a-f]{32})$/.exec(String(res.headers.location))![1]!;
}

async function pollDone(s: AsyncStack, id: string): Promise<RawResponse> {
  const r = await request(s.url, { path: `/.kueuer/requests/${id}?wait=20s` });
  expect(r.status, r.body.toString()).toBe(200);
  return r;
}

describe('asynchronous requests on Redis, two responder replicas', () => {
  it('a replica killed between submit and poll: the other replica stores the answer and answers the poll', async () => {
    const queue = uniqueQueue('async-redis');
    const a = await replica(queue);
    const b = await replica(queue, false);
    const id = await submit(a, '/held/job', {}, 'payload');
    await waitFor(() => held.length === 1, 10_000, 'the app to get the request');
    // Replica A dies: its HTTP server and its broker connection are gone before the app answers.
    await a.stopResponder();
    await a.transport.close();
    held.shift()!();
    const done = await pollDone(b, id);
    expect(done.body.toString()).toBe('done /held/job payload');
    expect(done.headers['x-app']).toBe('yes');
    expect(done.headers['x-kueuer-request-id']).toBe(id);
  });

  it('a responder restart keeps accepted requests and stored results', async () => {
    const queue = uniqueQueue('async-redis');
    const first = await replica(queue);
    const doneId = await submit(first, '/quick');
    await pollDone(first, doneId);
    const pendingId = await submit(first, '/held/later');
    await waitFor(() => held.length === 1, 10_000, 'the app to get the request');
    // The responder process stops (its sidecar, with the app's request in hand, stays).
    await first.stopResponder();
    await first.transport.close();
    // A new responder process: new connections to Redis and the broker; nothing answers polls meanwhile.
    const second = await replica(queue, false);
    expect((await pollDone(second, doneId)).body.toString()).toBe('done /quick b');
    const pending = await request(second.url, { path: `/.kueuer/requests/${pendingId}` });
    expect(pending.status).toBe(202);
    expect(json(pending)).toMatchObject({ id: pendingId, status: 'pending' });
    held.shift()!();
    expect((await pollDone(second, pendingId)).body.toString()).toBe('done /held/later b');
  });

  it('an Idempotency-Key holds across replicas: the repeat gets the first Location, the app runs once', async () => {
    const queue = uniqueQueue('async-redis');
    const a = await replica(queue);
    const b = await replica(queue, false);
    const before = app.received.length;
    const key = `key-${queue}`;
    const first = await submit(a, '/pay', { 'idempotency-key': key }, 'ten');
    const again = await submit(b, '/pay', { 'idempotency-key': key }, 'ten');
    expect(again).toBe(first);
    await pollDone(b, first);
    await delay(300);
    expect(app.received.length - before).toBe(1);
    const other = await request(b.url, { method: 'POST', path: '/pay', headers: { prefer: 'respond-async', 'idempotency-key': key }, body: 'eleven' });
    expect(other.status).toBe(422);
    // DELETE on one replica removes the result for all, and frees the key.
    expect((await request(b.url, { method: 'DELETE', path: `/.kueuer/requests/${first}` })).status).toBe(200);
    expect((await request(a.url, { path: `/.kueuer/requests/${first}` })).status).toBe(404);
    expect(await submit(a, '/pay', { 'idempotency-key': key }, 'eleven')).not.toBe(first);
  });

  it('a result expires with its lifetime; nothing of it is left in Redis', async () => {
    const s = await store();
    const queue = uniqueQueue('async-redis');
    await s.accept(queue, 'a'.repeat(32), 300);
    expect(await s.complete(queue, 'a'.repeat(32), { status: 200, headers: [], body: Buffer.from('x') })).toBe(true);
    expect((await s.get(queue, 'a'.repeat(32)))?.result?.body.toString()).toBe('x');
    await delay(500);
    expect(await s.get(queue, 'a'.repeat(32))).toBeUndefined();
    expect(await s.complete(queue, 'a'.repeat(32), { status: 200, headers: [], body: Buffer.from('x') })).toBe(false);
  });
});

describe.each(['redis', 'memory'] as const)('the backlog of a queue in the %s store (kueuer status)', (kind) => {
  it('counts requests awaiting an answer until answered, removed or past their deadline, and results until they expire or are deleted; the indexes expire too', async () => {
    const s = kind === 'redis' ? await store() : new MemoryAsyncStore(1 << 20);
    if (kind === 'memory') cleanups.push(() => s.close());
    const [queue, other] = [uniqueQueue('async-backlog'), uniqueQueue('async-backlog')];
    const ids = ['1', '2', '3', '4', '5'].map((c) => c.repeat(32));
    const now = Date.now();
    for (const id of ids.slice(0, 4)) await s.accept(queue, id, 60_000, undefined, undefined, now + 60_000);
    await s.accept(queue, ids[4]!, 400, undefined, undefined, now + 200); // a result kept 400 ms, answer expected for 200 ms
    await s.accept(other, ids[0]!, 60_000);
    expect(await s.backlog(queue)).toEqual({ pending: 5, results: 0 });
    expect(await s.complete(queue, ids[0]!, { status: 200, headers: [], body: Buffer.from('x') })).toBe(true);
    expect(await s.complete(queue, ids[0]!, { status: 200, headers: [], body: Buffer.from('again') })).toBe(false);
    expect(await s.complete(queue, ids[1]!, { status: 500, headers: [], body: Buffer.from('y') })).toBe(true);
    expect(await s.remove(queue, ids[2]!)).toBe(true);
    expect(await s.backlog(queue)).toEqual({ pending: 2, results: 2 });
    expect(await s.remove(queue, ids[1]!)).toBe(true);
    expect(await s.backlog(queue)).toEqual({ pending: 2, results: 1 });
    expect(await s.backlog(other)).toEqual({ pending: 1, results: 0 });
    await delay(250); // past ids[4]'s deadline: no answer expected any more
    expect(await s.backlog(queue)).toEqual({ pending: 1, results: 1 });
    if (kind === 'redis') {
      // An index of a queue no longer written expires with its last entry.
      const q = uniqueQueue('async-backlog');
      await s.accept(q, ids[0]!, 300);
      await delay(400);
      const { Redis } = await import('ioredis');
      const redis = new Redis(inject('redisUrl'));
      cleanups.push(async () => redis.disconnect());
      expect(await redis.exists(`kueuer:async:{${q}}:index:pending`, `kueuer:async:{${q}}:${ids[0]}`)).toBe(0);
    }
  });
});

describe('--async-store redis://', () => {
  it('a Redis that does not answer stops the start with a configuration error naming the flag and the address', async () => {
    const { openAsyncStore } = await import('../../responder/start.js');
    const { parseAsyncStore } = await import('../../responder/config.js');
    const { freePort } = await import('../helpers/net.js');
    const port = await freePort();
    await expect(openAsyncStore(parseAsyncStore(`redis://127.0.0.1:${port}`), silentLog, 1_000)).rejects.toThrow(
      `--async-store: Redis did not answer within 1000 ms at 127.0.0.1:${port}`,
    );
  });

  it('a Redis that answers is the store', async () => {
    const { openAsyncStore } = await import('../../responder/start.js');
    const { parseAsyncStore } = await import('../../responder/config.js');
    const s = await openAsyncStore(parseAsyncStore(inject('redisUrl')), silentLog);
    cleanups.push(async () => s?.close());
    expect(s).toBeInstanceOf(RedisAsyncStore);
  });
});
