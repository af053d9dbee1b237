/**
 * Asynchronous requests (docs/async.md): RFC 7240 `Prefer: respond-async`
 * (kueuer.io/async: on-request) or every request (always) is answered 202
 * with a Location under /.kueuer/requests/; polling it gives 202 until the app
 * answered, then the app's exact answer. Long-poll, cancel, idempotency keys,
 * lifetimes and the 404s, on the embedded broker, on RabbitMQ and on Kafka.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MemoryAsyncStore } from '../../responder/async/store.js';
import { request, json, type RawResponse } from '../helpers/http.js';
import { metricValue, type BackendName } from '../helpers/stack.js';
import { startTestApp, delay, type TestApp } from '../helpers/test-app.js';
import { startAsyncStack, type AsyncStack } from '../helpers/async-stack.js';

const LOCATION = /^\/\.kueuer\/requests\/([0-9a-f]{32})$/;
const header = (r: RawResponse, name: string): string | undefined => {
  const v = r.headers[name.toLowerCase()];
  return Array.isArray(v) ? v.join(', ') : v;
};

let app: TestApp;
/** Requests the app holds until released (path /held). */
const held: Array<() => void> = [];
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(async () => app.close());

function answering(): void {
  app.handle((req, res) => {
    const answer = () => {
      res.statusCode = 201;
      res.statusMessage = 'Made It';
      res.setHeader('X-App', ['one', 'two']);
      res.setHeader('Content-Type', 'text/plain');
      res.end(`app got ${req.method} ${req.url} ${req.body.toString()}`);
    };
    if (req.url.startsWith('/held')) held.push(answer);
    else answer();
  });
}

const stops: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const f of held.splice(0)) f();
  for (const s of stops.splice(0).reverse()) await s();
});

async function stack(backend: BackendName, mode: 'on-request' | 'always', extra: Partial<Parameters<typeof startAsyncStack>[1]> = {}): Promise<AsyncStack> {
  answering();
  const s = await startAsyncStack(backend, { appPort: app.port, async: { mode }, ...extra });
  stops.push(() => s.stop());
  return s;
}

async function submit(s: AsyncStack, path = '/job', body = 'payload', headers: Record<string, string> = {}): Promise<{ res: RawResponse; id: string }> {
  const res = await request(s.url, { method: 'POST', path, headers: { prefer: 'respond-async', ...headers }, body });
  expect(res.status, res.body.toString()).toBe(202);
  const id = LOCATION.exec(header(res, 'location') ?? '')?.[1];
  expect(id).toBeDefined();
  return { res, id: id! };
}

async function pollUntilDone(s: AsyncStack, id: string): Promise<RawResponse> {
  for (let i = 0; i < 200; i++) {
    const r = await request(s.url, { path: `/.kueuer/requests/${id}` });
    if (r.status !== 202) return r;
    await delay(50);
  }
  throw new Error('never done');
}

describe.each(['memory', 'amqp', 'kafka'] as const)('asynchronous requests on %s', (backend) => {
  it('on-request: Prefer: respond-async gets 202, Preference-Applied, Location and Retry-After; other requests stay synchronous', async () => {
    const s = await stack(backend, 'on-request');
    const sync = await request(s.url, { method: 'POST', path: '/now', body: 'x' });
    expect(sync.status).toBe(201);
    expect(sync.body.toString()).toBe('app got POST /now x');
    const { res, id } = await submit(s);
    expect(header(res, 'preference-applied')).toBe('respond-async');
    expect(header(res, 'retry-after')).toBe('1');
    expect(header(res, 'x-kueuer-request-id')).toBe(id);
    expect(json(res)).toEqual({ id, status: 'accepted', location: `/.kueuer/requests/${id}` });
    expect(await metricValue(s.registry, 'kueuer_responder_async_accepted_total', { queue: s.queue })).toBe(1);
  });

  it("poll: 202 until the app answered, then the app's exact answer with the request id", async () => {
    const s = await stack(backend, 'on-request');
    const { id } = await submit(s, '/held/1', 'abc');
    const { waitFor } = await import('../helpers/stack.js');
    await waitFor(() => held.length === 1, 10_000, 'the app to get the request');
    const pending = await request(s.url, { path: `/.kueuer/requests/${id}` });
    expect(pending.status).toBe(202);
    expect(header(pending, 'retry-after')).toBe('1');
    expect(header(pending, 'location')).toBe(`/.kueuer/requests/${id}`);
    expect(json(pending)).toMatchObject({ id, status: 'pending' });
    held.shift()!();
    const done = await pollUntilDone(s, id);
    expect(done.status).toBe(201);
    expect(done.statusMessage).toBe('Made It');
    expect(done.rawHeaders.filter((_h, i) => i % 2 === 0)).toEqual(expect.arrayContaining(['X-App', 'Content-Type', 'x-kueuer-request-id']));
    expect(header(done, 'x-app')).toBe('one, two');
    expect(done.body.toString()).toBe('app got POST /held/1 abc');
    expect(header(done, 'x-kueuer-request-id')).toBe(id);
    // A result stays until its lifetime ends or it is deleted: poll again, same answer.
    expect((await request(s.url, { path: `/.kueuer/requests/${id}` })).body.toString()).toBe('app got POST /held/1 abc');
    expect(await metricValue(s.registry, 'kueuer_responder_async_completed_total', { queue: s.queue })).toBe(1);
    expect(await metricValue(s.registry, 'kueuer_responder_async_polls_total', { queue: s.queue, state: 'done' })).toBe(2);
  });

  it('long-poll: ?wait= returns as soon as the result is stored, and 202 at its end when it is not', async () => {
    const s = await stack(backend, 'on-request');
    const { id } = await submit(s, '/held/2');
    let started = Date.now();
    const still = await request(s.url, { path: `/.kueuer/requests/${id}?wait=500ms` });
    expect(still.status).toBe(202);
    expect(Date.now() - started).toBeGreaterThanOrEqual(450);
    setTimeout(() => held.shift()?.(), 300);
    started = Date.now();
    const done = await request(s.url, { path: `/.kueuer/requests/${id}?wait=20s` });
    expect(done.status).toBe(201);
    expect(Date.now() - started).toBeLessThan(10_000);
    const bad = await request(s.url, { path: `/.kueuer/requests/${id}?wait=2h` });
    expect(bad.status).toBe(400);
    expect(json(bad).error).toBe('async_invalid_wait');
  });

  it('always: every request is answered 202, without Prefer', async () => {
    const s = await stack(backend, 'always');
    const res = await request(s.url, { path: '/plain' });
    expect(res.status).toBe(202);
    expect(header(res, 'preference-applied')).toBeUndefined();
    const id = LOCATION.exec(header(res, 'location') ?? '')![1]!;
    expect((await pollUntilDone(s, id)).body.toString()).toBe('app got GET /plain ');
  });

  it("unknown, malformed, deleted and another Service's ids get the catalogue 404; other methods 405", async () => {
    const store = new MemoryAsyncStore(1 << 20);
    stops.push(() => store.close());
    const s = await stack(backend, 'on-request', { store });
    const other = await stack(backend, 'on-request', { store });
    const { id } = await submit(other);
    for (const path of [`/.kueuer/requests/${id}`, `/.kueuer/requests/${'0'.repeat(32)}`, '/.kueuer/requests/../../etc', '/.kueuer/other']) {
      const r = await request(s.url, { path });
      expect(r.status, path).toBe(404);
      expect(json(r).error, path).toBe('async_request_not_found');
      expect(header(r, 'content-type')).toBe('application/json');
    }
    const done = await pollUntilDone(other, id);
    expect(done.status).toBe(201);
    const put = await request(other.url, { method: 'PUT', path: `/.kueuer/requests/${id}`, body: 'x' });
    expect(put.status).toBe(405);
    expect(header(put, 'allow')).toBe('GET, HEAD, DELETE');
    const del = await request(other.url, { method: 'DELETE', path: `/.kueuer/requests/${id}` });
    expect(del.status).toBe(200);
    expect(json(del)).toEqual({ id, status: 'deleted' });
    expect((await request(other.url, { path: `/.kueuer/requests/${id}` })).status).toBe(404);
  });

  it('Idempotency-Key: a repeat gets the first Location and the app runs once; another body with the key gets 422', async () => {
    const s = await stack(backend, 'on-request');
    const before = app.received.length;
    const first = await submit(s, '/pay', 'ten euros', { 'idempotency-key': `k-${s.queue}` });
    const again = await submit(s, '/pay', 'ten euros', { 'idempotency-key': `k-${s.queue}` });
    expect(again.id).toBe(first.id);
    await pollUntilDone(s, first.id);
    await delay(300);
    expect(app.received.length - before).toBe(1);
    const other = await request(s.url, {
      method: 'POST',
      path: '/pay',
      headers: { prefer: 'respond-async', 'idempotency-key': `k-${s.queue}` },
      body: 'a million',
    });
    expect(other.status).toBe(422);
    expect(json(other).error).toBe('idempotency_key_reused');
  });

  it('a result is gone at the end of its lifetime', async () => {
    const s = await stack(backend, 'on-request', { async: { mode: 'on-request', resultTtlMs: 1_500 } });
    const { id } = await submit(s);
    expect((await pollUntilDone(s, id)).status).toBe(201);
    await delay(1_700);
    const gone = await request(s.url, { path: `/.kueuer/requests/${id}` });
    expect(gone.status).toBe(404);
    expect(json(gone).error).toBe('async_request_not_found');
  });

  it("a request whose deadline passed unanswered polls as the synchronous path's 504 deadline_exceeded", async () => {
    // No sidecar: the request waits in the queue past its deadline.
    const s = await stack(backend, 'on-request', { withSidecar: false, timeoutMs: 1_000 });
    const { id } = await submit(s, '/queued-too-long');
    const started = Date.now();
    const r = await request(s.url, { path: `/.kueuer/requests/${id}?wait=20s` });
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(r.status).toBe(504);
    expect(json(r).error).toBe('deadline_exceeded');
    expect(await metricValue(s.registry, 'kueuer_responder_async_polls_total', { queue: s.queue, state: 'expired' })).toBe(1);
  });

  it('DELETE cancels a request no consumer took: the app never sees it, and the poll says it was cancelled', async () => {
    const s = await stack(backend, 'on-request', { concurrency: 1 });
    const first = await submit(s, '/held/busy');
    const { waitFor } = await import('../helpers/stack.js');
    await waitFor(() => held.length === 1, 10_000, 'the app to get the first request');
    const { id } = await submit(s, '/queued');
    const del = await request(s.url, { method: 'DELETE', path: `/.kueuer/requests/${id}` });
    expect(del.status).toBe(200);
    // The embedded broker takes it out of its queue; on RabbitMQ and Kafka it stays queued, and the sidecar that takes it skips it.
    const app0 = backend === 'memory' ? 'not-run' : 'queued';
    expect(json(del)).toMatchObject({ id, status: 'cancelled', app: app0 });
    const cancelled = await request(s.url, { path: `/.kueuer/requests/${id}` });
    expect(cancelled.status).toBe(410);
    expect(json(cancelled)).toMatchObject({ error: 'async_request_cancelled', requestId: id, app: app0 });
    held.shift()!();
    await pollUntilDone(s, first.id);
    await waitFor(async () => json(await request(s.url, { path: `/.kueuer/requests/${id}` })).app === 'not-run', 10_000, 'the skip');
    await delay(200);
    expect(app.received.some((r) => r.url === '/queued')).toBe(false);
    expect(await metricValue(s.registry, 'kueuer_responder_async_cancelled_total', { queue: s.queue })).toBe(1);
  });
});

describe('cancel on the embedded broker', () => {
  it('DELETE of a request a consumer already took is a 409, and nothing changes', async () => {
    const s = await stack('memory', 'on-request', { concurrency: 1 });
    const { id } = await submit(s, '/held/taken');
    const { waitFor } = await import('../helpers/stack.js');
    await waitFor(() => held.length === 1, 10_000, 'the app to get the request');
    const del = await request(s.url, { method: 'DELETE', path: `/.kueuer/requests/${id}` });
    expect(del.status).toBe(409);
    expect(json(del).error).toBe('async_already_started');
    held.shift()!();
    expect((await pollUntilDone(s, id)).status).toBe(201);
  });
});

describe('kueuer.io/async off', () => {
  it('leaves /.kueuer/ paths and Prefer: respond-async to the app', async () => {
    answering();
    const { startStack } = await import('../helpers/stack.js');
    const s = await startStack('memory', { appPort: app.port });
    stops.push(() => s.stop());
    const r = await request(s.url, { path: '/.kueuer/requests/x', headers: { prefer: 'respond-async' } });
    expect(r.status).toBe(201);
    expect(r.body.toString()).toBe('app got GET /.kueuer/requests/x ');
  });
});
