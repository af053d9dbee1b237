/**
 * The sidecar's drain, which the app containers' preStop hook calls (GET
 * /drain on the admin port, webhook/pod-injection.ts): it stops taking
 * requests and answers once those in flight are answered, so the kubelet
 * sends the app SIGTERM only after that. On the real RabbitMQ.
 */
import Fastify from 'fastify';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { startSidecar } from '../../cli/components.js';
import { registerAdminRoutes } from '../../shared/admin-server.js';
import { newTransport, silentLog, startStack, waitFor } from '../helpers/stack.js';
import { delay, startTestApp } from '../helpers/test-app.js';

describe('draining the sidecar (the preStop hook)', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanups.reverse()) await c();
    cleanups.length = 0;
  });

  it('answers once the requests in flight are answered, then takes no more; another sidecar gets the rest (amqp)', async () => {
    const app = await startTestApp();
    cleanups.push(() => app.close());
    app.handle((req, res) => {
      setTimeout(() => res.end(`done ${req.url}`), 1_500);
    });
    const stack = await startStack('amqp', { appPort: app.port, timeoutMs: 30_000, concurrency: 2 });
    cleanups.push(() => stack.stop());
    const ask = (path: string) => fetch(`${stack.url}${path}`).then(async (r) => ({ status: r.status, body: await r.text(), at: Date.now() }));

    const inFlight = [ask('/one'), ask('/two')];
    await waitFor(() => app.received.length === 2, 10_000, 'two requests at the app');
    const drainStarted = Date.now();
    expect(stack.sidecar.notReadyReason()).toBeNull();
    const drained = stack.sidecar.drain().then(() => Date.now());
    expect(stack.sidecar.notReadyReason()).toBe('draining: the pod is stopping');
    const later = ask('/three'); // published while draining: not for this sidecar
    const drainedAt = await drained;
    const answers = await Promise.all(inFlight);
    expect(answers.map((a) => [a.status, a.body])).toEqual([
      [200, 'done /one'],
      [200, 'done /two'],
    ]);
    expect(drainedAt - drainStarted).toBeGreaterThan(500); // it waited for the app's answers
    await delay(1_000);
    expect(app.received.map((r) => r.url)).toEqual(['/one', '/two']);
    await stack.sidecar.drain(); // idempotent

    const transport = await newTransport('amqp');
    const other = await startSidecar(
      { app: { host: '127.0.0.1', port: app.port }, queue: stack.queue, concurrency: 1, maxResponseBytes: 1 << 20 },
      transport,
      new Registry(),
      silentLog,
    );
    cleanups.push(async () => {
      await other.stop();
      await transport.close();
    });
    expect(await later).toMatchObject({ status: 200, body: 'done /three' });
  }, 60_000);

  it('GET /drain on the admin port waits for the drain; /healthz reports a drained process that was never stopped', async () => {
    let release!: () => void;
    const draining = new Promise<void>((resolve) => (release = resolve));
    let live: string | null = null;
    const admin = Fastify();
    registerAdminRoutes(admin, { registry: new Registry(), drain: () => draining, notLiveReason: () => live });
    cleanups.push(() => admin.close());
    let answered = false;
    const call = admin.inject({ method: 'GET', url: '/drain' }).then((r) => {
      answered = true;
      return r;
    });
    await delay(200);
    expect(answered).toBe(false);
    release();
    const res = await call;
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'drained' });
    expect((await admin.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    live = 'drained through /drain 130 s ago and still running: restart to consume again';
    const sick = await admin.inject({ method: 'GET', url: '/healthz' });
    expect(sick.statusCode).toBe(503);
    expect(sick.json()).toEqual({ status: 'not live', reason: live });
  });
});
