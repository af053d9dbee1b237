/**
 * The real `kueuer responder` and `kueuer sidecar` processes on a real
 * RabbitMQ: graceful drain on SIGTERM, redelivery when a sidecar is killed,
 * replies that reach only the responder replica holding the client, and
 * the admin endpoints.
 */
import http from 'node:http';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { request } from '../helpers/http.js';
import { msgIs, spawnKueuer, type KueuerProcess } from '../helpers/processes.js';
import { uniqueQueue, waitFor } from '../helpers/stack.js';
import { freePort } from '../helpers/net.js';
import { delay, startTestApp, type TestApp } from '../helpers/test-app.js';

const amqpUrl = inject('amqpUrl');

describe('responder and sidecar processes on RabbitMQ', () => {
  const started: KueuerProcess[] = [];
  const apps: TestApp[] = [];
  afterEach(async () => {
    for (const p of started.splice(0)) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    for (const a of apps.splice(0)) await a.close();
  });

  async function responder(queue: string, extra: string[] = []): Promise<{ proc: KueuerProcess; url: string; admin: string }> {
    const proc = spawnKueuer(['responder', '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--backend', amqpUrl, '--queue', queue, ...extra]);
    started.push(proc);
    const ready = await proc.waitForLog(msgIs('responder ready'));
    await waitFor(async () => (await request(`http://${ready.admin}`, { path: '/readyz' })).status === 200, 10_000, 'responder ready');
    return { proc, url: `http://${ready.listen}`, admin: `http://${ready.admin}` };
  }

  async function sidecar(queue: string, appPort: number, concurrency = 1): Promise<KueuerProcess> {
    const proc = spawnKueuer([
      'sidecar',
      '--app',
      `127.0.0.1:${appPort}`,
      '--admin-listen',
      '127.0.0.1:0',
      '--backend',
      amqpUrl,
      '--queue',
      queue,
      '--concurrency',
      String(concurrency),
    ]);
    started.push(proc);
    const ready = await proc.waitForLog(msgIs('sidecar ready'));
    await waitFor(async () => (await request(`http://${ready.admin}`, { path: '/readyz' })).status === 200, 10_000, 'sidecar ready');
    return proc;
  }

  async function slowApp(ms: number): Promise<TestApp> {
    const app = await startTestApp();
    apps.push(app);
    app.handle((req, res) => setTimeout(() => res.end(`done ${req.url} redelivered=${req.headers['x-kueuer-redelivered'] ?? 'false'}`), ms));
    return app;
  }

  it('sidecar SIGTERM: stops taking requests, finishes and acks those in flight, exits 0', async () => {
    const queue = uniqueQueue('drain');
    const app = await slowApp(800);
    const front = await responder(queue);
    const first = await sidecar(queue, app.port, 2);
    const inFlight = [request(front.url, { path: '/a' }), request(front.url, { path: '/b' })];
    await waitFor(() => app.received.length === 2, 5000, 'two requests at the app');
    const queued = request(front.url, { path: '/c' });
    queued.catch(() => undefined); // awaited below; a failed assertion before that must not leave it unhandled when the responder is killed
    await delay(100);
    first.child.kill('SIGTERM');
    for (const r of await Promise.all(inFlight)) expect(r.status).toBe(200);
    expect(await first.exited).toEqual({ code: 0, signal: null });
    expect(first.logs.some(msgIs('stopped cleanly'))).toBe(true);
    // The draining sidecar did not take /c; a new one does, without a redelivery. /a and /b were sent
    // at once, so the app may have seen them in either order.
    expect(app.received.map((r) => r.url).sort()).toEqual(['/a', '/b']);
    await sidecar(queue, app.port);
    const c = await queued;
    expect(c.status).toBe(200);
    expect(c.body.toString()).toBe('done /c redelivered=false');
  });

  it('sidecar SIGKILL mid-request: the request is redelivered to another sidecar and answered once', async () => {
    const queue = uniqueQueue('crash');
    const app = await slowApp(600);
    const front = await responder(queue);
    const doomed = await sidecar(queue, app.port);
    const pending = request(front.url, { path: '/survivor' });
    await waitFor(() => app.received.length === 1, 5000, 'request at the app');
    doomed.child.kill('SIGKILL');
    await sidecar(queue, app.port);
    const res = await pending;
    expect(res.status).toBe(200);
    expect(res.body.toString()).toBe('done /survivor redelivered=true');
    expect(app.received).toHaveLength(2);
    expect(app.received[1]!.headers['x-kueuer-request-id']).toBe(app.received[0]!.headers['x-kueuer-request-id']);
  });

  it('replies reach only the responder replica that holds the client', async () => {
    const queue = uniqueQueue('replicas');
    const app = await slowApp(5);
    const [one, two] = await Promise.all([responder(queue), responder(queue)]);
    await sidecar(queue, app.port, 8);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 20 });
    const results = await Promise.all(Array.from({ length: 60 }, (_, i) => request(i % 2 ? one.url : two.url, { path: `/r/${i}`, agent })));
    agent.destroy();
    results.forEach((r, i) => expect(r.body.toString()).toBe(`done /r/${i} redelivered=false`));
    // A broadcast design would hand each replica the other's 30 replies as late ones.
    for (const replica of [one, two]) {
      const metrics = (await request(replica.admin, { path: '/metrics' })).body.toString();
      expect(metrics).toMatch(new RegExp(`kueuer_responder_requests_total\\{queue="${queue}",code="200"\\} 30\\b`));
      expect(metrics).toMatch(new RegExp(`kueuer_responder_late_replies_total\\{queue="${queue}"\\} 0\\b`));
      expect(metrics).not.toMatch(/kueuer_responder_invalid_replies_total\{[^}]*\} [1-9]/);
    }
  });

  it('responder SIGTERM: stops accepting, answers the clients it holds, exits 0', async () => {
    const queue = uniqueQueue('front-drain');
    const app = await slowApp(700);
    const front = await responder(queue);
    await sidecar(queue, app.port, 4);
    const held = [request(front.url, { path: '/h1' }), request(front.url, { path: '/h2' })];
    await waitFor(() => app.received.length === 2, 5000, 'requests at the app');
    front.proc.child.kill('SIGTERM');
    await delay(100);
    const refused = await request(front.url, { path: '/new' }).catch((e: NodeJS.ErrnoException) => e);
    expect(refused).toBeInstanceOf(Error); // the listener is closed
    for (const r of await Promise.all(held)) expect(r.status).toBe(200);
    expect(await front.proc.exited).toEqual({ code: 0, signal: null });
  });

  it('sidecar: live at once, ready only once the app accepts connections', async () => {
    const appPort = await freePort();
    const proc = spawnKueuer([
      'sidecar',
      '--app',
      `127.0.0.1:${appPort}`,
      '--admin-listen',
      '127.0.0.1:0',
      '--backend',
      amqpUrl,
      '--queue',
      uniqueQueue('probe'),
    ]);
    started.push(proc);
    const ready = await proc.waitForLog(msgIs('sidecar ready'));
    const admin = `http://127.0.0.1:${String(ready.admin).split(':').pop()}`;
    expect((await request(admin, { path: '/healthz' })).status).toBe(200);
    await waitFor(
      async () => {
        const r = await request(admin, { path: '/readyz' });
        return r.status === 503 && r.body.toString().includes('waiting for the app to accept connections');
      },
      10_000,
      'readyz to report the app',
    );
    const app = await startTestApp(appPort);
    apps.push(app);
    await waitFor(async () => (await request(admin, { path: '/readyz' })).status === 200, 10_000, 'readyz 200 once the app is up');
  });

  it('serves /healthz, /readyz and /metrics on the admin port, apart from the proxied port', async () => {
    const queue = uniqueQueue('admin');
    const app = await slowApp(1);
    const front = await responder(queue);
    expect((await request(front.admin, { path: '/healthz' })).status).toBe(200);
    expect((await request(front.admin, { path: '/readyz' })).status).toBe(200);
    const metrics = await request(front.admin, { path: '/metrics' });
    expect(metrics.headers['content-type']).toMatch(/^text\/plain/);
    expect(metrics.body.toString()).toContain('kueuer_responder_pending_requests');
    expect(metrics.body.toString()).toContain('process_resident_memory_bytes');
    // On the proxied port, /metrics belongs to the app.
    await sidecar(queue, app.port);
    expect((await request(front.url, { path: '/metrics' })).body.toString()).toBe('done /metrics redelivered=false');
  });
});
