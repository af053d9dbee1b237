/**
 * Signed callbacks wired to asynchronous requests (docs/async-callbacks.md):
 * a request naming an allowed Kueuer-Callback-Url gets its app's exact answer
 * POSTed there, signed; the app never sees the header; a refused URL is a 400
 * and nothing runs; a callback on a request answered synchronously is a 400;
 * a replica killed after the submit does not lose the callback (Redis).
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { CallbackDispatcher, parseCallbackSettings, verifyCallback } from '../../responder/callbacks/index.js';
import { RedisAsyncStore } from '../../responder/async/redis-store.js';
import { startAsyncStack, type AsyncStack } from '../helpers/async-stack.js';
import { json, request } from '../helpers/http.js';
import { silentLog, uniqueQueue, waitFor, type BackendName } from '../helpers/stack.js';
import { delay, startTestApp, type TestApp } from '../helpers/test-app.js';

const SECRET = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;
const readSecret = async (namespace: string, name: string): Promise<Record<string, string> | undefined> =>
  namespace === 'shop' && name === 'cb' ? { key: Buffer.from(SECRET).toString('base64') } : undefined;

interface Received {
  headers: IncomingMessage['headers'];
  body: Buffer;
}
let receiver: Server;
let receiverUrl: string;
const received: Received[] = [];
let app: TestApp;
const appSaw: Array<{ url: string; headers: Record<string, string | string[] | undefined> }> = [];
const held: Array<() => void> = [];

beforeAll(async () => {
  app = await startTestApp();
  app.handle((req, res) => {
    appSaw.push({ url: req.url, headers: req.headers });
    const answer = () => {
      res.statusCode = 201;
      res.setHeader('Content-Type', 'text/plain');
      res.setHeader('X-App', 'yes');
      res.end(`app got ${req.url} ${req.body.toString()}`);
    };
    if (req.url.startsWith('/held')) held.push(answer);
    else answer();
  });
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req
      .on('data', (c: Buffer) => chunks.push(c))
      .on('end', () => {
        received.push({ headers: req.headers, body: Buffer.concat(chunks) });
        res.writeHead(204).end();
      });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await app.close();
  await new Promise((r) => receiver.close(r));
});

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const f of held.splice(0)) f();
  for (const c of cleanups.splice(0).reverse()) await c();
  received.length = 0;
  appSaw.length = 0;
});

function dispatcher(): CallbackDispatcher {
  const d = new CallbackDispatcher({ readSecret, log: silentLog });
  cleanups.push(() => d.close());
  return d;
}

const annotations = (): Record<string, string> => ({ 'kueuer.io/async-callback-allow': receiverUrl, 'kueuer.io/async-callback-secret': 'cb' });

async function stack(backend: BackendName, extra: Partial<Parameters<typeof startAsyncStack>[1]> = {}): Promise<AsyncStack> {
  const s = await startAsyncStack(backend, {
    appPort: app.port,
    async: { mode: 'on-request', callbacks: { namespace: 'shop', settings: parseCallbackSettings(annotations()) } },
    callbacks: dispatcher(),
    ...extra,
  });
  cleanups.push(() => s.stop());
  return s;
}

describe.each(['memory', 'amqp'] as const)('async callbacks on %s', (backend) => {
  it('an allowed callback gets the exact answer, signed; the app never sees the header', async () => {
    const s = await stack(backend);
    const cb = `${receiverUrl}/done?order=42`;
    const res = await request(s.url, { method: 'POST', path: '/job', headers: { prefer: 'respond-async', 'kueuer-callback-url': cb }, body: 'payload' });
    expect(res.status, res.body.toString()).toBe(202);
    const id = /([0-9a-f]{32})$/.exec(String(res.headers.location))![1]!;
    await waitFor(() => received.length > 0, 20_000, 'the callback');
    await delay(300);
    expect(received).toHaveLength(1);
    const got = received[0]!;
    expect(verifyCallback({ key: SECRET, headers: got.headers, body: got.body })).toEqual({ ok: true });
    expect(got.body.toString()).toBe('app got /job payload');
    expect(got.headers['x-kueuer-status']).toBe('201');
    expect(got.headers['webhook-id']).toBe(id);
    expect(got.headers['x-app']).toBe('yes');
    expect(appSaw).toHaveLength(1);
    expect(appSaw[0]!.headers['kueuer-callback-url']).toBeUndefined();
    const poll = await request(s.url, { path: `/.kueuer/requests/${id}` });
    expect(poll.status).toBe(201);
  });

  it('a refused URL is a 400 callback_not_allowed and the app is never called', async () => {
    const s = await stack(backend);
    const res = await request(s.url, {
      method: 'POST',
      path: '/job',
      headers: { prefer: 'respond-async', 'kueuer-callback-url': 'http://169.254.169.254/latest' },
      body: 'x',
    });
    expect(res.status).toBe(400);
    expect(json(res)).toMatchObject({ error: 'callback_not_allowed', rule: 'not_allowed' });
    await delay(300);
    expect(appSaw).toHaveLength(0);
  });

  it('a Service whose signing Secret is missing answers 500 callback_misconfigured, nothing queued', async () => {
    const bad = { ...annotations(), 'kueuer.io/async-callback-secret': 'missing' };
    const s = await stack(backend, { async: { mode: 'on-request', callbacks: { namespace: 'shop', settings: parseCallbackSettings(bad) } } });
    const res = await request(s.url, { method: 'POST', path: '/job', headers: { prefer: 'respond-async', 'kueuer-callback-url': receiverUrl }, body: 'x' });
    expect(res.status).toBe(500);
    expect(json(res)).toMatchObject({ error: 'callback_misconfigured' });
    await delay(300);
    expect(appSaw).toHaveLength(0);
  });

  it('a callback on a request answered synchronously is a 400 callback_requires_async; the app is not called', async () => {
    const s = await stack(backend);
    const res = await request(s.url, { method: 'POST', path: '/now', headers: { 'kueuer-callback-url': receiverUrl }, body: 'x' });
    expect(res.status).toBe(400);
    expect(json(res)).toMatchObject({ error: 'callback_requires_async' });
    await delay(300);
    expect(appSaw).toHaveLength(0);
  });
});

describe('async callbacks on Redis, two responder replicas', () => {
  it('a replica killed after the submit: the other stores the answer and delivers the callback once', async () => {
    const queue = uniqueQueue('async-cb');
    const replica = async (withSidecar: boolean): Promise<AsyncStack> => {
      const store = new RedisAsyncStore(inject('redisUrl'), silentLog);
      await store.ready(10_000);
      cleanups.push(() => store.close());
      return stack('amqp', { queue, store, withSidecar });
    };
    const a = await replica(true);
    const b = await replica(false);
    const res = await request(a.url, {
      method: 'POST',
      path: '/held/job',
      headers: { prefer: 'respond-async', 'kueuer-callback-url': receiverUrl },
      body: 'p',
    });
    expect(res.status, res.body.toString()).toBe(202);
    await waitFor(() => held.length === 1, 20_000, 'the app to get the request');
    await a.stopResponder();
    held.shift()!();
    await waitFor(() => received.length > 0, 20_000, 'the callback');
    await delay(500);
    expect(received).toHaveLength(1);
    expect(verifyCallback({ key: SECRET, headers: received[0]!.headers, body: received[0]!.body })).toEqual({ ok: true });
    expect(received[0]!.body.toString()).toBe('app got /held/job p');
    void b;
  });
});
