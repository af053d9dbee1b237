/**
 * What the real node showed (docs/real-node.md): with a native sidecar the
 * app gets SIGTERM and exits first, and the sidecar, still consuming, retries
 * the requests the app now refuses until the pod's grace period ends (~30 s
 * waits). A stopping sidecar hands such never-sent requests back to the
 * broker instead, so another pod answers them at once. Here on the real
 * RabbitMQ, with the real sidecar and responder in this process.
 */
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { startSidecar } from '../helpers/components.js';
import { metricValue, newTransport, silentLog, startStack, waitFor, type Stack } from '../helpers/stack.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';
import { request } from './load.js';

describe('a stopping sidecar whose app is gone', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanups.reverse()) await c();
    cleanups.length = 0;
  });

  it('hands the request the app refuses back to the queue, and another sidecar answers it at once (amqp)', async () => {
    let app: TestApp = await startTestApp();
    const port = app.port;
    const stack: Stack = await startStack('amqp', { appPort: port, timeoutMs: 60_000, concurrency: 1 });
    cleanups.push(async () => {
      await stack.responder.responder.drain(1_000);
      await stack.responderTransport.close();
      await stack.sidecarTransport.close();
    });
    expect((await request(`${stack.url}/warm`)).status).toBe(200);

    await app.close(); // the app exits first, as a native sidecar's app does
    const started = Date.now();
    const answer = request(`${stack.url}/after-the-app-stopped`);
    await waitFor(
      async () => (await metricValue(stack.sidecarRegistry, 'kueuer_sidecar_app_retries_total')) >= 1,
      10_000,
      'the sidecar to retry the refused call',
    );

    const stopping = Date.now();
    await stack.sidecar.stop();
    const stopMs = Date.now() - stopping;

    // Another pod: the app back on its port, a new sidecar on its own connection.
    app = await startTestApp(port);
    cleanups.push(() => app.close());
    const transport = await newTransport('amqp');
    const other = await startSidecar(
      { app: { host: '127.0.0.1', port }, queue: stack.queue, concurrency: 1, maxResponseBytes: 1 << 20 },
      transport,
      new Registry(),
      silentLog,
    );
    cleanups.push(async () => {
      await other.stop();
      await transport.close();
    });
    const res = await answer;
    expect(res.error).toBeUndefined();
    expect(res.status).toBe(200);
    expect(app.received.map((r) => r.url)).toEqual(['/after-the-app-stopped']);
    expect(app.received[0]!.headers['x-kueuer-redelivered']).toBe('true');
    // Without the hand-back the stop waits for the retries to reach the request's deadline (60 s).
    expect(stopMs).toBeLessThan(3_000);
    expect(Date.now() - started).toBeLessThan(15_000);
  }, 60_000);
});
