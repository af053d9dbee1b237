/**
 * What the request path answers when something goes wrong: each failure has
 * a defined status, body and metric, on the embedded backend and on RabbitMQ.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { startResponder } from '../helpers/components.js';
import type { ResponderSettings } from '../../responder/config.js';
import { parseBackend } from '../../shared/transport/backend.js';
import { createTransport } from '../../shared/transport/create-transport.js';
import { MemoryTransport } from '../../shared/transport/memory.js';
import { json, request } from '../helpers/http.js';
import { metricValue, silentLog, startStack, uniqueQueue, waitFor, type BackendName, type Stack } from '../helpers/stack.js';
import { delay, echoHandler, startTestApp, type TestApp } from '../helpers/test-app.js';
import { freePort } from '../helpers/net.js';
import { settleable } from '../helpers/settleable.js';

const backends: BackendName[] = ['memory', 'amqp', 'kafka'];

describe.each(backends)('failures on %s', (backend) => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  async function stackWith(app: TestApp | number, options: Partial<Parameters<typeof startStack>[1]> = {}): Promise<Stack> {
    const appPort = typeof app === 'number' ? app : app.port;
    const stack = await startStack(backend, { appPort, ...options });
    cleanups.push(() => stack.stop());
    return stack;
  }
  async function app(): Promise<TestApp> {
    const a = await startTestApp();
    cleanups.push(() => a.close());
    return a;
  }

  it('answers 504 with a JSON body carrying the request id when the deadline passes', async () => {
    const a = await app();
    a.handle((_req, res) => setTimeout(() => res.end('slow'), 1500));
    const stack = await stackWith(a, { timeoutMs: 300 });
    const started = Date.now();
    const res = await request(stack.url, { path: '/slow' });
    const took = Date.now() - started;
    expect(res.status).toBe(504);
    expect(res.headers['content-type']).toBe('application/json');
    const body = json(res);
    expect(body.error).toBe('deadline_exceeded');
    expect(body.requestId).toBe(res.headers['x-kueuer-request-id']);
    expect(body.requestId).toMatch(/^[0-9a-f]{32}$/);
    expect(took).toBeGreaterThanOrEqual(290);
    expect(took).toBeLessThan(1400); // answered at the deadline, not when the app finished
    expect(stack.responder.responder.pending.size).toBe(0);
    // The sidecar gives up on the app at the same deadline instead of waiting for it.
    await waitFor(
      async () => (await metricValue(stack.sidecarRegistry, 'kueuer_sidecar_requests_total', { code: 'expired' })) === 1,
      1000,
      'the sidecar to count the request as expired',
    );
    // The responder keeps serving.
    a.handle(echoHandler);
    expect((await request(stack.url, { path: '/after', body: 'x' })).status).toBe(200);
  });

  it('answers 413 quickly to an oversize body and keeps serving', async () => {
    const a = await app();
    const stack = await stackWith(a, { maxBodyBytes: 1024 });
    const res = await request(stack.url, { method: 'POST', path: '/upload', body: Buffer.alloc(1025) });
    expect(res.status).toBe(413);
    expect(json(res).error).toBe('body_too_large');
    expect(a.received).toHaveLength(0); // never reached the queue or the app

    // A large upload with no declared length is cut off once it passes the limit.
    const big = await request(stack.url, {
      method: 'POST',
      path: '/upload',
      headers: { 'transfer-encoding': 'chunked' },
      body: Buffer.alloc(256 * 1024),
    }).catch((e: NodeJS.ErrnoException) => e);
    if (!(big instanceof Error)) expect(big.status).toBe(413);
    else expect(['EPIPE', 'ECONNRESET']).toContain(big.code);

    const ok = await request(stack.url, { method: 'POST', path: '/upload', body: Buffer.alloc(1024, 1) });
    expect(ok.status).toBe(200);
    expect(ok.body.length).toBe(1024);
  });

  it('answers 503 with Retry-After once too many clients are held, and memory stays bounded', async () => {
    const a = await app();
    a.handle((_req, res) => setTimeout(() => res.end('done'), 400));
    const stack = await stackWith(a, { maxPending: 3, concurrency: 8 });
    const held = Array.from({ length: 3 }, (_, i) => request(stack.url, { path: `/held/${i}` }));
    await delay(100);
    const refused = await request(stack.url, { path: '/one-too-many' });
    expect(refused.status).toBe(503);
    expect(refused.headers['retry-after']).toBe('1');
    expect(json(refused).error).toBe('too_many_pending');
    expect(stack.responder.responder.pending.size).toBe(3);
    for (const r of await Promise.all(held)) expect(r.status).toBe(200);
    expect((await request(stack.url, { path: '/room-again' })).status).toBe(200);
  });

  it('answers 502 when the app response is over the size limit', async () => {
    const a = await app();
    a.handle((_req, res) => res.end(Buffer.alloc(4096)));
    const stack = await stackWith(a, { maxResponseBytes: 1024 });
    const res = await request(stack.url, { path: '/huge-answer' });
    expect(res.status).toBe(502);
    expect(json(res).error).toBe('response_too_large');
  });

  it('takes no request before the app accepts connections, then answers it', async () => {
    const port = await freePort();
    const stack = await stackWith(port, { timeoutMs: 5000 });
    const pending = request(stack.url, { path: '/early', body: 'hello' });
    await delay(500);
    expect(stack.sidecar.notReadyReason()).toBe('waiting for the app to accept connections');
    const late = await startTestApp(port);
    cleanups.push(() => late.close());
    const res = await pending;
    expect(res.status).toBe(200);
    expect(res.body.toString()).toBe('hello');
    expect(late.received).toHaveLength(1);
    expect(stack.sidecar.notReadyReason()).toBeNull();
    // It never knocked on a closed port: the request waited in the queue.
    expect(await metricValue(stack.sidecarRegistry, 'kueuer_sidecar_app_retries_total')).toBe(0);
  });

  /** A stack whose app was up (so the sidecar consumes) and has now gone away. */
  async function stackWithDeadApp(timeoutMs: number): Promise<{ stack: Stack; port: number }> {
    const a = await startTestApp();
    const stack = await stackWith(a, { timeoutMs });
    expect(await stack.sidecar.consuming).toBe(true);
    await a.close();
    return { stack, port: a.port };
  }

  it('answers 502 when the app stays unreachable until the deadline', async () => {
    const { stack } = await stackWithDeadApp(1500);
    const started = Date.now();
    const res = await request(stack.url, { path: '/nobody-home' });
    expect(res.status).toBe(502);
    expect(json(res).error).toBe('app_unreachable');
    expect(json(res).requestId).toBe(res.headers['x-kueuer-request-id']);
    expect(Date.now() - started).toBeLessThan(1500);
    expect(await metricValue(stack.sidecarRegistry, 'kueuer_sidecar_app_retries_total')).toBeGreaterThan(0);
  });

  it('retries a refused connection until the app is back, then answers 200', async () => {
    const { stack, port } = await stackWithDeadApp(5000);
    const pending = request(stack.url, { path: '/restarting', body: 'hello' });
    await delay(400);
    const back = await startTestApp(port);
    cleanups.push(() => back.close());
    const res = await pending;
    expect(res.status).toBe(200);
    expect(res.body.toString()).toBe('hello');
    expect(back.received).toHaveLength(1);
    expect(await metricValue(stack.sidecarRegistry, 'kueuer_sidecar_app_retries_total')).toBeGreaterThan(0);
  });

  it('answers 503 with Retry-After within 1 s when the broker is unreachable', async () => {
    const deadBroker = { memory: '', amqp: `amqp://guest:guest@127.0.0.1:${await freePort()}`, kafka: `kafka://127.0.0.1:${await freePort()}` }[backend];
    const transport =
      backend === 'memory'
        ? new MemoryTransport()
        : await createTransport(parseBackend(deadBroker), silentLog, { visibilityTimeoutMs: 1000, kafkaPartitions: 3, delivery: 'at-least-once' });
    cleanups.push(() => transport.close());
    const running = await startResponder(
      {
        listen: { host: '127.0.0.1', port: 0 },
        queue: uniqueQueue(),
        timeoutMs: 30_000,
        maxBodyBytes: 1024,
        maxPending: 10,
        publishTimeoutMs: 1000,
        headersTimeoutMs: 60_000,
        bodyTimeoutMs: 30_000,
        sendTimeoutMs: 30_000,
      },
      transport,
      new Registry(),
      silentLog,
    );
    cleanups.push(() => running.responder.drain(100));
    if (backend === 'memory') await transport.close(); // the embedded broker is gone
    const started = Date.now();
    const res = await request(`http://127.0.0.1:${running.address.port}`, { path: '/x' });
    expect(res.status).toBe(503);
    expect(res.headers['retry-after']).toBe('1');
    expect(json(res).error).toBe('broker_unavailable');
    expect(Date.now() - started).toBeLessThan(1000);
    expect(running.responder.pending.size).toBe(0);
  });
});

describe('--max-pending on a broker slow to confirm', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  /** A responder over the embedded broker whose publishes wait until `gate` resolves, as a broker slow to confirm. */
  async function gatedResponder(o: { maxPending: number; async?: ResponderSettings['async'] }) {
    const transport = new MemoryTransport();
    cleanups.push(() => transport.close());
    const gate = settleable();
    const publish = transport.publishRequest.bind(transport);
    const counts = { publishing: 0 };
    transport.publishRequest = async (...args) => {
      counts.publishing++;
      await gate.promise;
      return publish(...args);
    };
    const running = await startResponder(
      {
        listen: { host: '127.0.0.1', port: 0 },
        queue: uniqueQueue(),
        timeoutMs: 30_000,
        maxBodyBytes: 1024 * 1024,
        maxPending: o.maxPending,
        publishTimeoutMs: 30_000,
        headersTimeoutMs: 60_000,
        bodyTimeoutMs: 30_000,
        sendTimeoutMs: 30_000,
        ...(o.async ? { async: o.async } : {}),
      },
      transport,
      new Registry(),
      silentLog,
    );
    cleanups.push(() => running.responder.drain(100));
    return { url: `http://127.0.0.1:${running.address.port}`, running, gate, counts };
  }

  /** A request given up after 3 s: its answer's error code, or the client's error name. */
  async function errorOf(url: string, path: string): Promise<unknown> {
    const res = await request(url, { method: 'POST', path, body: Buffer.alloc(512 * 1024), signal: AbortSignal.timeout(3000) }).catch((err: Error) => err.name);
    return typeof res === 'string' ? res : json(res).error;
  }

  it('keeps the place of a client that left while its publish runs, so leaving clients cannot pile up bodies past --max-pending', async () => {
    // A broker slow to confirm (RabbitMQ electing a leader, Kafka fencing a dead broker) holds each publish,
    // and its body, for up to --publish-timeout. A client that leaves meanwhile frees nothing until it ends.
    const { url, running, gate, counts } = await gatedResponder({ maxPending: 2 });
    for (let i = 0; i < 2; i++) {
      const left = new AbortController();
      const gone = request(url, { method: 'POST', path: `/left/${i}`, body: Buffer.alloc(512 * 1024), signal: left.signal }).catch(() => 'gone');
      await waitFor(() => counts.publishing === i + 1, 2000, `publish ${i} to start`);
      left.abort();
      expect(await gone).toBe('gone');
    }
    await waitFor(() => running.responder.pending.size === 0, 2000, 'the departed clients to be released');
    expect(await errorOf(url, '/third')).toBe('too_many_pending');
    expect(counts.publishing).toBe(2); // the third body was never handed to the broker
    gate.resolve();
    // Once those publishes ended, the places are free again: a new client is held (no sidecar answers it here).
    const later = new AbortController();
    const held = request(url, { method: 'POST', path: '/fourth', body: 'x', signal: later.signal }).catch(() => 'gone');
    await waitFor(() => running.responder.pending.size === 1, 2000, 'the fourth client to be held');
    later.abort();
    expect(await held).toBe('gone');
    expect(counts.publishing).toBe(3);
  });

  it('counts asynchronous submissions being published against --max-pending too', async () => {
    const { url, gate, counts } = await gatedResponder({ maxPending: 2, async: { mode: 'always' } });
    const submitted = [0, 1].map((i) => request(url, { method: 'POST', path: `/submit/${i}`, body: Buffer.alloc(512 * 1024) }));
    await waitFor(() => counts.publishing === 2, 2000, 'both submissions to be publishing');
    expect(await errorOf(url, '/third')).toBe('too_many_pending');
    expect(counts.publishing).toBe(2);
    gate.resolve();
    for (const res of await Promise.all(submitted)) expect(res.status).toBe(202);
    const after = await request(url, { method: 'POST', path: '/after', body: 'x' });
    expect(after.status).toBe(202);
  });
});
