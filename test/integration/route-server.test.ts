/**
 * `kueuer responder --routes cluster`: one listener per annotated Service,
 * each feeding its own queue, following the Services as they change. The
 * cluster is faked at its boundary (a static Service list); the responder,
 * transport, sidecars and apps are real.
 */
import type { V1Service } from '@kubernetes/client-node';
import { Registry } from 'prom-client';
import { afterAll, describe, expect, it } from 'vitest';
import { startSidecar, type RunningSidecar } from '../helpers/components.js';
import { routedService, testRouteServer } from '../helpers/route-server.js';
import { StaticObjectSource } from '../../shared/kube/object-source.js';
import { routesFromServices } from '../../shared/service-routes.js';
import { json, request } from '../helpers/http.js';
import { newTransport, silentLog, waitFor, type BackendName } from '../helpers/stack.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';
import { freePort } from '../helpers/net.js';

describe.each<BackendName>(['memory', 'amqp', 'kafka'])('route server on %s', (backend) => {
  const cleanup: Array<() => Promise<void>> = [];
  afterAll(async () => {
    for (const c of cleanup.reverse()) await c();
  });

  it('serves each Service on its own port and queue, and follows changes', async () => {
    const transport = await newTransport(backend);
    const sidecarTransport = backend === 'memory' ? transport : await newTransport(backend);
    cleanup.push(async () => {
      await transport.close();
      if (sidecarTransport !== transport) await sidecarTransport.close();
    });
    const ns = `ns${Date.now() % 100000}`;
    const apps: Record<string, TestApp> = {};
    const sidecars: RunningSidecar[] = [];
    for (const name of ['web', 'orders']) {
      const app = await startTestApp();
      app.handle((req, res) => res.end(`${name} got ${req.url}`));
      apps[name] = app;
      cleanup.push(() => app.close());
      // The pods' queues: <namespace>.<workload>, or kueuer.io/queue.
      sidecars.push(
        await startSidecar(
          { app: { host: '127.0.0.1', port: app.port }, queue: `${ns}.${name}`, concurrency: 2, maxResponseBytes: 1 << 20 },
          sidecarTransport,
          new Registry(),
          silentLog,
        ),
      );
    }
    cleanup.push(async () => {
      for (const s of sidecars) await s.stop();
    });

    const routes = testRouteServer(transport, cleanup);
    const services = new StaticObjectSource<V1Service>();
    services.onChange(() => void routes.apply(routesFromServices(services.list())));

    const [webPort, checkoutPort] = [await freePort(), await freePort()];
    services.set([
      routedService(ns, 'web', webPort),
      routedService(ns, 'checkout', checkoutPort, { 'kueuer.io/queue': 'orders', 'kueuer.io/timeout': '300ms' }),
    ]);
    await routes.apply(routesFromServices(services.list()));
    await waitFor(() => transport.isReady(), 20_000, 'the route inboxes to be ready');

    const web = await request(`http://127.0.0.1:${webPort}`, { path: '/a', headers: { host: 'anything.example' } });
    expect(web.body.toString()).toBe('web got /a');
    const checkout = await request(`http://127.0.0.1:${checkoutPort}`, { path: '/b', headers: { host: 'web.shop.svc' } });
    expect(checkout.body.toString()).toBe('orders got /b'); // the port decides the queue, not Host

    // The Service's own timeout applies to its route.
    apps.orders!.handle((_req, res) => setTimeout(() => res.end('late'), 1000));
    const slow = await request(`http://127.0.0.1:${checkoutPort}`, { path: '/slow' });
    expect(slow.status).toBe(504);
    expect(json(slow).error).toBe('deadline_exceeded');

    // Removing the annotation (restoring the Service) closes its route.
    services.set([routedService(ns, 'web', webPort)]);
    await routes.apply(routesFromServices(services.list()));
    await expect(request(`http://127.0.0.1:${checkoutPort}`, { path: '/gone' })).rejects.toThrow();
    expect(routes.routes().map((r) => r.service)).toEqual([`${ns}/web`]);
    expect((await request(`http://127.0.0.1:${webPort}`, { path: '/still' })).body.toString()).toBe('web got /still');
  });
});
