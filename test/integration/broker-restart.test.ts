/**
 * A RabbitMQ restart on a node of this test's own (so the other test files'
 * broker is untouched): the responder answers 503 while it is down, both
 * components reconnect by themselves, and a request that was queued before
 * the restart survives it (durable queue, persistent message) and is answered.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { startResponder, startSidecar } from '../helpers/components.js';
import { json, request } from '../helpers/http.js';
import { newTransport, silentLog, uniqueQueue, waitFor } from '../helpers/stack.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';
import type { Transport } from '../../shared/transport/transport.js';

const root = join(import.meta.dirname, '..', '..');
const port = 26672;
const env = { ...process.env, KUEUER_RABBITMQ_PORT: String(port), KUEUER_RABBITMQ_DIR: join(root, '.cache', 'rabbitmq-restart') };
const broker = (action: 'start' | 'stop', keepData = false): string =>
  execFileSync('bash', [join(root, 'scripts', 'dev', 'rabbitmq.sh'), action], {
    env: keepData ? { ...env, KUEUER_RABBITMQ_KEEP_DATA: '1' } : env,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  })
    .trim()
    .split('\n')
    .pop()!;

describe('broker restart on amqp', () => {
  let url: string;
  let app: TestApp;
  const transports: Transport[] = [];
  beforeAll(() => {
    url = broker('start');
  }, 90_000);
  afterAll(async () => {
    for (const t of transports) await t.close();
    await app?.close();
    broker('stop');
  }, 30_000);

  it('answers 503 while the broker is down, reconnects, and keeps queued requests', { timeout: 90_000 }, async () => {
    app = await startTestApp();
    app.handle((req, res) => res.end(`ok ${req.url}`));
    const queue = uniqueQueue('restart');
    const responderTransport = await newTransport('amqp', url);
    transports.push(responderTransport);
    const front = await startResponder(
      {
        listen: { host: '127.0.0.1', port: 0 },
        queue,
        timeoutMs: 60_000,
        maxBodyBytes: 1024,
        maxPending: 100,
        publishTimeoutMs: 1000,
        headersTimeoutMs: 60_000,
        bodyTimeoutMs: 30_000,
        sendTimeoutMs: 30_000,
      },
      responderTransport,
      new Registry(),
      silentLog,
    );
    const base = `http://127.0.0.1:${front.address.port}`;

    // Queued with no sidecar running yet, then the broker goes down and comes back.
    const queued = request(base, { path: '/queued-before-restart' });
    await waitFor(() => front.responder.pending.size === 1, 5000, 'request held');
    await new Promise((r) => setTimeout(r, 200)); // let the publish be confirmed
    broker('stop');
    await waitFor(() => !responderTransport.isReady(), 10_000, 'responder to notice the broker is gone');
    const refused = await request(base, { path: '/while-down' });
    expect(refused.status).toBe(503);
    expect(json(refused).error).toBe('broker_unavailable');

    broker('start', true);
    await waitFor(() => responderTransport.isReady(), 30_000, 'responder to reconnect');
    const sidecarTransport = await newTransport('amqp', url);
    transports.push(sidecarTransport);
    const sidecar = await startSidecar(
      { app: { host: '127.0.0.1', port: app.port }, queue, concurrency: 2, maxResponseBytes: 1024 },
      sidecarTransport,
      new Registry(),
      silentLog,
    );

    const survived = await queued;
    expect(survived.status).toBe(200);
    expect(survived.body.toString()).toBe('ok /queued-before-restart');
    expect((await request(base, { path: '/after' })).body.toString()).toBe('ok /after');

    // The sidecar also reconnects by itself.
    broker('stop');
    broker('start', true);
    await waitFor(() => responderTransport.isReady() && sidecarTransport.isReady(), 30_000, 'both to reconnect');
    await waitFor(async () => (await request(base, { path: '/again' })).status === 200, 15_000, 'a 200 after the second restart');

    await sidecar.stop();
    await front.responder.drain(100);
  });
});
