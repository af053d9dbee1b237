/**
 * The sidecar's drain, which the app containers' preStop hook calls (GET
 * /drain on the admin port, webhook/admission/pod-injection.ts): it stops taking
 * requests and answers once those in flight are answered, so the kubelet
 * sends the app SIGTERM only after that. On the real RabbitMQ.
 */
import Fastify from 'fastify';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { startSidecar } from '../helpers/components.js';
import { registerAdminRoutes } from '../../shared/admin-server.js';
import { drainHook } from '../../webhook/admission/pod-injection.js';
import { msgIs, spawnKueuer } from '../helpers/processes.js';
import { brokers, newTransport, silentLog, startStack, uniqueQueue, waitFor } from '../helpers/stack.js';
import { delay, startTestApp } from '../helpers/test-app.js';

const TOKEN = 'pod-drain-token-0123456789abcdef';

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
    // Took no more than the two in flight (sent at once, so in either order): /three waits for another sidecar.
    expect(app.received.map((r) => r.url).sort()).toEqual(['/one', '/two']);
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
    registerAdminRoutes(admin, { registry: new Registry(), drain: () => draining, notLiveReason: () => live, drainToken: TOKEN });
    cleanups.push(() => admin.close());
    let answered = false;
    const call = admin.inject({ method: 'GET', url: '/drain', headers: { authorization: `Bearer ${TOKEN}` } }).then((r) => {
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

  it("only the pod's token drains: HEAD, other methods, no or a wrong token, or no token configured change nothing (issue 22, item 5)", async () => {
    let drains = 0;
    const build = (drainToken?: string) => {
      const admin = Fastify();
      registerAdminRoutes(admin, { registry: new Registry(), drain: async () => void drains++, ...(drainToken ? { drainToken } : {}) });
      cleanups.push(() => admin.close());
      return admin;
    };
    const admin = build(TOKEN);
    const head = await admin.inject({ method: 'HEAD', url: '/drain' });
    expect([head.statusCode, head.headers.allow]).toEqual([405, 'GET']);
    for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS'] as const) {
      const r = await admin.inject({ method, url: '/drain', headers: { authorization: `Bearer ${TOKEN}` } });
      expect([method, r.statusCode, r.json().error]).toEqual([method, 405, 'method_not_allowed']);
    }
    for (const authorization of [undefined, 'Bearer wrong-token-0123456789abcdef', `Basic ${TOKEN}`, `Bearer ${TOKEN}x`, 'Bearer ']) {
      const r = await admin.inject({ method: 'GET', url: '/drain', headers: authorization === undefined ? {} : { authorization } });
      expect([authorization, r.statusCode, r.json().error, r.headers['www-authenticate']]).toEqual([
        authorization,
        401,
        'drain_unauthorized',
        'Bearer realm="kueuer-drain"',
      ]);
    }
    const disabled = await build().inject({ method: 'GET', url: '/drain', headers: { authorization: `Bearer ${TOKEN}` } });
    expect([disabled.statusCode, disabled.json().error]).toEqual([403, 'drain_disabled']);
    expect(drains).toBe(0);
    // The read-only endpoints keep answering HEAD (monitors use it).
    expect((await admin.inject({ method: 'HEAD', url: '/healthz' })).statusCode).toBe(200);
    const ok = await admin.inject({ method: 'GET', url: '/drain', headers: { authorization: `bearer ${TOKEN}` } });
    expect([ok.statusCode, drains]).toEqual([200, 1]);
  });

  it("the real sidecar: curl -I /drain does not stop it; the preStop hook's request does (amqp)", async () => {
    const app = await startTestApp();
    cleanups.push(() => app.close());
    const side = spawnKueuer(
      ['sidecar', '--app', `127.0.0.1:${app.port}`, '--admin-listen', '127.0.0.1:0', '--backend', brokers().amqp, '--queue', uniqueQueue('drain-token')],
      {
        KUEUER_DRAIN_TOKEN: TOKEN,
      },
    );
    cleanups.push(async () => {
      side.child.kill('SIGKILL');
      await side.exited;
    });
    const ready = await side.waitForLog(msgIs('sidecar ready'), 30_000);
    const admin = `http://${ready.admin as string}`;
    await waitFor(() => fetch(`${admin}/readyz`).then((r) => r.status === 200), 30_000, 'the sidecar ready');
    expect((await fetch(`${admin}/drain`, { method: 'HEAD' })).status).toBe(405);
    expect((await fetch(`${admin}/drain`)).status).toBe(401);
    expect((await fetch(`${admin}/readyz`)).status).toBe(200);
    const hook = drainHook(9091, TOKEN).httpGet!;
    const headers = Object.fromEntries((hook.httpHeaders ?? []).map((h) => [h.name, h.value]));
    expect(await fetch(`${admin}${hook.path}`, { headers }).then((r) => r.status)).toBe(200);
    expect((await fetch(`${admin}/readyz`).then((r) => r.json())) as unknown).toEqual({ status: 'not ready', reason: 'draining: the pod is stopping' });
  }, 60_000);
});
