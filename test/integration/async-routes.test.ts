/**
 * kueuer.io/async reaches the responder through the Service's route
 * (`--routes cluster`), like kueuer.io/timeout: a Service with `always` is
 * answered 202 on its port, and changing the annotation restarts its route.
 */
import type { V1Service } from '@kubernetes/client-node';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { startSidecar } from '../helpers/components.js';
import { RouteServer } from '../../responder/route-server.js';
import { routesFromServices } from '../../shared/service-routes.js';
import { MemoryTransport } from '../../shared/transport/memory.js';
import { request } from '../helpers/http.js';
import { freePort } from '../helpers/net.js';
import { silentLog } from '../helpers/stack.js';
import { startTestApp } from '../helpers/test-app.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function service(port: number, annotations: Record<string, string>): V1Service {
  return {
    metadata: { namespace: 'shop', name: 'reports', annotations: { 'kueuer.io/inject': 'true', 'kueuer.io/responder-port': String(port), ...annotations } },
    spec: { ports: [{ name: 'http', port: 80, targetPort: port as never }] },
  };
}

describe('kueuer.io/async on a route', () => {
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
    const routes = new RouteServer(
      {
        host: '127.0.0.1',
        timeoutMs: 5_000,
        maxBodyBytes: 1 << 20,
        maxPending: 100,
        publishTimeoutMs: 1_000,
        headersTimeoutMs: 60_000,
        bodyTimeoutMs: 30_000,
        sendTimeoutMs: 30_000,
        drainTimeoutMs: 500,
      },
      transport,
      new Registry(),
      silentLog,
    );
    cleanups.push(() => routes.drain(100));
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
