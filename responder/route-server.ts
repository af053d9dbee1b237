/**
 * A responder serving many Services at once: one listener per route (the
 * responder port the webhook gave a Service), each publishing to its own
 * queue with its own reply inbox. Routes come from the annotated Services in
 * the cluster and are applied as they change: new ports open, removed ones
 * drain, changed ones restart.
 */
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { SerialRuns } from '../shared/serial.js';
import type { Route, RouteTable } from '../shared/service-routes.js';
import type { Transport } from '../shared/transport/transport.js';
import { parseCallbackSettings } from './callbacks/index.js';
import type { AsyncSettings, ResponderSettings } from './config.js';
import { responderMetrics } from './metrics.js';
import { buildResponder, type Responder, type ResponderDeps } from './server.js';

export type RouteDefaults = Omit<ResponderSettings, 'queue'> & { host: string; drainTimeoutMs: number };

interface RunningRoute {
  route: Route;
  responder: Responder;
}

export class RouteServer {
  private readonly running = new Map<number, RunningRoute>();
  private readonly applies = new SerialRuns((err) => this.log.error({ err: (err as Error).message }, 'could not apply the routes'));

  constructor(
    private readonly defaults: RouteDefaults,
    private readonly transport: Transport,
    private readonly registry: Registry,
    private readonly log: Logger,
    /** Shared by every route: the asynchronous requests' store and the callbacks seam. */
    private readonly deps: Omit<ResponderDeps, 'registry'> = {},
  ) {}

  /** The routes being served now. */
  routes(): Route[] {
    return [...this.running.values()].map((r) => r.route);
  }

  /** Applies a route table; calls are serialized, so a burst of changes applies in order. */
  apply(table: RouteTable): Promise<void> {
    return this.applies.run(() => this.reconcile(table));
  }

  private async reconcile(table: RouteTable): Promise<void> {
    for (const c of table.conflicts) {
      this.log.error(c, 'two Services claim one responder port; the older keeps it, re-create the newer to get a new port');
    }
    const wanted = new Map(table.routes.map((r) => [r.port, r]));
    for (const [port, running] of [...this.running]) {
      const next = wanted.get(port);
      if (!next || next.queue !== running.route.queue || next.timeoutMs !== running.route.timeoutMs || !sameAsync(next, running.route)) {
        this.running.delete(port);
        this.log.info({ port, service: running.route.service }, 'closing route');
        await running.responder.drain(this.defaults.drainTimeoutMs);
      }
    }
    for (const [port, route] of wanted) {
      if (this.running.has(port)) continue;
      const settings: ResponderSettings = {
        ...this.defaults,
        queue: route.queue,
        timeoutMs: route.timeoutMs ?? this.defaults.timeoutMs,
        ...(route.async ? { async: asyncSettings(route, route.async) } : {}),
      };
      const log = this.log.child({ route: route.service, queue: route.queue });
      const responder = await buildResponder(settings, this.transport, responderMetrics(this.registry, route.queue), log, {
        ...this.deps,
        registry: this.registry,
      });
      try {
        await responder.app.listen({ host: this.defaults.host, port });
      } catch (err) {
        log.error({ err: (err as Error).message, port }, 'cannot listen on the route port');
        await responder.drain(0);
        continue;
      }
      this.running.set(port, { route, responder });
      log.info({ port }, 'serving route');
    }
  }

  async drain(timeoutMs: number): Promise<void> {
    await this.applies.idle();
    await Promise.all([...this.running.values()].map((r) => r.responder.drain(timeoutMs)));
    this.running.clear();
  }
}

/** Whether two routes answer asynchronously the same way (a change restarts the route). */
function sameAsync(a: Route, b: Route): boolean {
  const cb = (r: Route): string => JSON.stringify(Object.entries(r.async?.callbacks ?? {}).sort());
  return a.async?.mode === b.async?.mode && a.async?.resultTtlMs === b.async?.resultTtlMs && cb(a) === cb(b);
}

/** A route's asynchronous settings; its callback annotations parsed once, here (a change restarts the route). */
function asyncSettings(route: Route, a: NonNullable<Route['async']>): AsyncSettings {
  const { callbacks, ...rest } = a;
  if (!callbacks) return rest;
  return { ...rest, callbacks: { namespace: route.service.split('/')[0]!, settings: parseCallbackSettings(callbacks) } };
}
