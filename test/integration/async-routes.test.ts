/**
 * kueuer.io/async reaches the responder through the Service's route
 * (`--routes cluster`), like kueuer.io/timeout: a Service with `always` is
 * answered 202 on its port, and changing the annotation restarts its route.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { V1Service } from '@kubernetes/client-node';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { startSidecar } from '../helpers/components.js';
import { CallbackDispatcher } from '../../responder/callbacks/index.js';
import { routesFromServices } from '../../shared/service-routes.js';
import { MemoryTransport } from '../../shared/transport/memory.js';
import { json, request } from '../helpers/http.js';
import { routedService, testRouteServer } from '../helpers/route-server.js';
import { freePort } from '../helpers/net.js';
import { silentLog, waitFor } from '../helpers/stack.js';
import { startTestApp } from '../helpers/test-app.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const service = (port: number, annotations: Record<string, string>): V1Service => routedService('shop', 'reports', port, annotations);
const routeServer = (transport: MemoryTransport, deps: Parameters<typeof testRouteServer>[2] = {}) => testRouteServer(transport, cleanups, deps);

describe('kueuer.io/async on a route', () => {
  it('the callback annotations reach the responder: an allowed callback is delivered, and a change of the allow-list restarts the route', async () => {
    const transport = new MemoryTransport({ visibilityTimeoutMs: 5_000 });
    const app = await startTestApp();
    const got: string[] = [];
    const receiver = createServer((req, res) => {
      req.resume().on('end', () => {
        got.push(String(req.headers['webhook-id']));
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    const receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
    const dispatcher = new CallbackDispatcher({
      readSecret: async (ns, name) => (ns === 'shop' && name === 'cb' ? { key: Buffer.alloc(32, 1).toString('base64') } : undefined),
      log: silentLog,
    });
    cleanups.push(async () => {
      await dispatcher.close();
      await transport.close();
      await app.close();
      await new Promise((r) => receiver.close(r));
    });
    const sidecar = await startSidecar(
      { app: { host: '127.0.0.1', port: app.port }, queue: 'shop.reports', concurrency: 2, maxResponseBytes: 1 << 20 },
      transport,
      new Registry(),
      silentLog,
    );
    cleanups.push(() => sidecar.stop());
    const routes = routeServer(transport, { callbacks: dispatcher });
    const port = await freePort();
    const annotations = (allow: string): Record<string, string> => ({
      'kueuer.io/async': 'always',
      'kueuer.io/async-callback-allow': allow,
      'kueuer.io/async-callback-secret': 'cb',
    });
    await routes.apply(routesFromServices([service(port, annotations(receiverUrl))]));
    const submitted = await request(`http://127.0.0.1:${port}`, { path: '/report', headers: { 'kueuer-callback-url': receiverUrl } });
    expect(submitted.status, submitted.body.toString()).toBe(202);
    await waitFor(() => got.length === 1, 10_000, 'the callback');
    expect(String(submitted.headers.location)).toContain(got[0]);

    await routes.apply(routesFromServices([service(port, annotations('https://elsewhere.example'))]));
    const refused = await request(`http://127.0.0.1:${port}`, { path: '/report', headers: { 'kueuer-callback-url': receiverUrl } });
    expect(refused.status).toBe(400);
    expect(json(refused)).toMatchObject({ error: 'callback_not_allowed' });
  });

  it('answers 202 for a Service with always, and follows a change to off', async () => {
    const transport = new MemoryTransport({ visibilityTimeoutMs: 5_000 });
    const app = await startTestApp();
    cleanups.push(async () => {
      await transport.close();
      await app.close();
    });
    const sidecar = await startSidecar(
      { app: { host: '127.0.0.1', port: app.port }, queue: 'shop.reports', concurrency: 2, maxResponseBytes: 1 << 20 },
      transport,
      new Registry(),
      silentLog,
    );
    cleanups.push(() => sidecar.stop());
    const routes = routeServer(transport);
    const port = await freePort();
    await routes.apply(routesFromServices([service(port, { 'kueuer.io/async': 'always', 'kueuer.io/async-result-ttl': '1h' })]));
    const submitted = await request(`http://127.0.0.1:${port}`, { path: '/report' });
    expect(submitted.status).toBe(202);
    expect(String(submitted.headers.location)).toMatch(/^\/\.kueuer\/requests\/[0-9a-f]{32}$/);
    const done = await request(`http://127.0.0.1:${port}`, { path: `${String(submitted.headers.location)}?wait=10s` });
    expect(done.status).toBe(200);

    await routes.apply(routesFromServices([service(port, { 'kueuer.io/async': 'off' })]));
    const sync = await request(`http://127.0.0.1:${port}`, { path: '/report' });
    expect(sync.status).toBe(200);
    expect(sync.headers['x-echo-url']).toBe('/report');
  });
});
