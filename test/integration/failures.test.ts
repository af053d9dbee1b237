/**
 * What the request path answers when something goes wrong: each failure has
 * a defined status, body and metric, on the embedded backend and on RabbitMQ.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { startResponder } from '../helpers/components.js';
import { parseBackend } from '../../shared/transport/backend.js';
import { createTransport } from '../../shared/transport/create-transport.js';
import { MemoryTransport } from '../../shared/transport/memory.js';
import { json, request } from '../helpers/http.js';
import { metricValue, silentLog, startStack, uniqueQueue, waitFor, type BackendName, type Stack } from '../helpers/stack.js';
import { delay, echoHandler, startTestApp, type TestApp } from '../helpers/test-app.js';
import { freePort } from '../helpers/net.js';

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
