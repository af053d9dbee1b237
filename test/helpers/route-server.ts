/** A RouteServer (`kueuer responder --routes cluster`) with the test suite's settings, and a Service it routes. */
import type { V1Service } from '@kubernetes/client-node';
import { Registry } from 'prom-client';
import { RouteServer } from '../../responder/route-server.js';
import type { Transport } from '../../shared/transport/transport.js';
import { silentLog } from './stack.js';

/** An opted-in Service the webhook gave the responder port `port`, with these annotations. */
export function routedService(ns: string, name: string, port: number, annotations: Record<string, string> = {}): V1Service {
  return {
    metadata: { namespace: ns, name, annotations: { 'kueuer.io/inject': 'true', 'kueuer.io/responder-port': String(port), ...annotations } },
    spec: { ports: [{ name: 'http', port: 80, targetPort: port as never }] },
  };
}

/** A route server on 127.0.0.1 (5 s timeout, 1 MiB bodies, 100 held clients); `cleanups` gets its drain. */
export function testRouteServer(
  transport: Transport,
  cleanups: Array<() => Promise<void>>,
  deps: ConstructorParameters<typeof RouteServer>[4] = {},
): RouteServer {
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
    deps,
  );
  cleanups.push(() => routes.drain(100));
  return routes;
}
