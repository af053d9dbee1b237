/**
 * Starting the responder: `startResponder` serves one queue on one port over a
 * transport it is given (so `kueuer local` shares one in-process broker with
 * the sidecar); `runResponder` is the whole `kueuer responder` process: broker,
 * the --queue responder and/or the cluster's routes, and admin endpoints,
 * stopped by the `stop` it returns.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { listen, serveAdmin } from '../shared/admin-server.js';
import { openCluster, type Cluster } from '../shared/kube/cluster.js';
import { watchAllServices } from '../shared/kube/services.js';
import { newRegistry } from '../shared/metrics.js';
import { notReadyReason, openBackend, type Running } from '../shared/open-backend.js';
import { ConfigError, formatHostPort, type HostPort } from '../shared/options.js';
import { routesFromServices } from '../shared/service-routes.js';
import type { Transport } from '../shared/transport/transport.js';
import type { ResponderOptions, ResponderSettings } from './config.js';
import { RedisAsyncStore } from './async/redis-store.js';
import type { AsyncStore } from './async/store.js';
import { CallbackDispatcher, kubeReadSecret } from './callbacks/index.js';
import { responderMetrics } from './metrics.js';
import { RouteServer } from './route-server.js';
import { buildResponder, type Responder, type ResponderDeps } from './server.js';

export interface RunningResponder {
  responder: Responder;
  address: HostPort;
}

export async function startResponder(
  settings: ResponderSettings & { listen: HostPort },
  transport: Transport,
  registry: Registry,
  log: Logger,
  deps: Omit<ResponderDeps, 'registry'> = {},
): Promise<RunningResponder> {
  const responder = await buildResponder(settings, transport, responderMetrics(registry, settings.queue), log, { ...deps, registry });
  const address = await listen(responder.app, settings.listen);
  return { responder, address };
}

/** --routes cluster: one port per annotated Service, following the Services as they change. */
async function serveClusterRoutes(o: ResponderOptions, transport: Transport, registry: Registry, log: Logger, store: AsyncStore | undefined): Promise<Running> {
  const cluster = await openCluster();
  const callbacks = clusterCallbacks(cluster, registry, log);
  const routes = new RouteServer({ ...o, host: o.listen.host }, transport, registry, log, { ...(store ? { asyncStore: store } : {}), callbacks });
  const services = await watchAllServices(log, cluster);
  const apply = (): void => void routes.apply(routesFromServices(services.list()));
  services.onChange(apply);
  apply();
  return {
    async stop() {
      await services.stop();
      await routes.drain(o.drainTimeoutMs);
      // No result is stored past here: callbacks waiting to retry are dead-lettered (shutdown), those in flight end.
      await callbacks.close();
    },
  };
}

/**
 * The callbacks of the cluster's Services: signing keys read from the Secret each Service names,
 * in its namespace, with the responder's ServiceAccount (RBAC: docs/async-callbacks.md).
 */
function clusterCallbacks(cluster: Cluster, registry: Registry, log: Logger): CallbackDispatcher {
  return new CallbackDispatcher({ readSecret: kubeReadSecret(cluster.clients.core), log, registry });
}

/**
 * --async-store: one store for every route of the process. `memory` leaves each route its own
 * embedded store (asynchronous requests then live and die with this replica).
 */
export async function openAsyncStore(choice: ResponderOptions['asyncStore'], log: Logger, timeoutMs = 15_000): Promise<AsyncStore | undefined> {
  if (choice === 'memory') return undefined;
  const store = new RedisAsyncStore(choice.href, log);
  await store.ready(timeoutMs).catch(async (err: Error) => {
    await store.close();
    throw new ConfigError([`--async-store: ${err.message} at ${choice.host}; check the address and that Redis runs`]);
  });
  log.info({ store: `${choice.protocol}//${choice.host}` }, 'asynchronous requests are kept in Redis');
  return store;
}

/**
 * With --routes cluster the responder is reached through Services whose
 * EndpointSlices list it: a pod being deleted is marked not ready at once, but
 * the change reaches kube-proxy on every node only after the endpoint
 * controllers and Kueuer's mirror have passed it on. Closing the ports on
 * SIGTERM would refuse (or, once the pod is gone, leave unroutable) the
 * connections kube-proxy still sends here meanwhile. So the responder first
 * reports not ready and keeps accepting for this long, then drains. Measured
 * on the real node (docs/real-node.md): a responder rollout without it lost
 * 48 of 1,632 requests (ECONNREFUSED, EHOSTUNREACH).
 */
const CLUSTER_SHUTDOWN_DELAY_MS = 5_000;

/** `kueuer responder`: its broker, the --queue responder and/or the cluster's routes, and its admin endpoints. */
export async function runResponder(o: ResponderOptions, log: Logger): Promise<Running> {
  if (o.routes === 'queue' && o.queue === undefined) {
    throw new ConfigError(['missing --queue (or KUEUER_QUEUE): required unless --routes cluster']);
  }
  const registry = newRegistry();
  const store = await openAsyncStore(o.asyncStore, log);
  const transport = await openBackend(o, log, 'responder');
  const parts: Running[] = [];
  let listening: string | undefined;
  if (o.queue !== undefined) {
    const { responder, address } = await startResponder({ ...o, queue: o.queue }, transport, registry, log, store ? { asyncStore: store } : {});
    parts.push({ stop: () => responder.drain(o.drainTimeoutMs) });
    listening = formatHostPort(address);
  }
  if (o.routes === 'cluster') parts.push(await serveClusterRoutes(o, transport, registry, log, store));
  let shuttingDown = false;
  const { admin, address } = await serveAdmin(
    { registry, log, notReadyReason: notReadyReason(transport, () => (shuttingDown ? 'shutting down' : null)) },
    o.adminListen,
  );
  log.info({ listen: listening, queue: o.queue, admin: address, routes: o.routes }, 'responder ready');
  return {
    async stop() {
      shuttingDown = true;
      if (o.routes === 'cluster') {
        log.info({ delayMs: CLUSTER_SHUTDOWN_DELAY_MS }, 'still accepting clients while Services stop routing here');
        await sleep(CLUSTER_SHUTDOWN_DELAY_MS);
      }
      await Promise.all(parts.map((p) => p.stop()));
      await admin.close();
      await transport.close();
      await store?.close();
    },
  };
}
