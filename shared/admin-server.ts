/**
 * The operational endpoints of a component, on their own port so that every
 * path of the proxied port belongs to the app: /metrics (the component's own
 * prom-client registry), /healthz (the process is alive), /readyz (it can
 * do its job now, e.g. the broker is connected) and, for the sidecar, /drain.
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type RawServerBase } from 'fastify';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { formatHostPort, type HostPort } from './options.js';

export interface AdminRoutesOptions {
  registry: Registry;
  /** Returns null when ready, or the reason it is not; always ready when absent. */
  notReadyReason?: () => string | null;
  /** Returns null while alive (/healthz 200), or why the process should be restarted. */
  notLiveReason?: () => string | null;
  /**
   * GET /drain: stop taking work and answer once the work in flight is done.
   * The sidecar's pods call it from the app container's preStop hook, so the
   * app gets SIGTERM only after the sidecar stopped taking requests.
   */
  drain?: () => Promise<void>;
}

export interface AdminServerOptions extends AdminRoutesOptions {
  log: Logger;
}

/** A Fastify instance on any server (HTTP, or the webhook's HTTPS one). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyFastify = FastifyInstance<RawServerBase, any, any, FastifyBaseLogger>;

/** /metrics, /healthz and /readyz, on a server of their own (buildAdminServer) or beside other routes (the webhook). */
export function registerAdminRoutes(app: AnyFastify, options: AdminRoutesOptions): void {
  const notReadyReason = options.notReadyReason ?? (() => null);
  app.get('/metrics', async (_req, reply) => {
    reply.header('content-type', options.registry.contentType);
    return options.registry.metrics();
  });
  const notLiveReason = options.notLiveReason ?? (() => null);
  app.get('/healthz', async (_req, reply) => {
    const reason = notLiveReason();
    if (reason !== null) return reply.code(503).send({ status: 'not live', reason });
    return { status: 'ok' };
  });
  const drain = options.drain;
  if (drain) {
    app.get('/drain', async () => {
      await drain();
      return { status: 'drained' };
    });
  }
  app.get('/readyz', async (_req, reply) => {
    const reason = notReadyReason();
    if (reason !== null) return reply.code(503).send({ status: 'not ready', reason });
    return { status: 'ready' };
  });
}

export function buildAdminServer(options: AdminServerOptions): FastifyInstance {
  const app = Fastify({
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion -- it fixes Fastify's logger generic to FastifyBaseLogger, which the instance's declared type needs
    loggerInstance: options.log.child({ server: 'admin' }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
  });
  registerAdminRoutes(app, options);
  return app;
}

export async function listen(app: AnyFastify, at: HostPort): Promise<HostPort> {
  await app.listen({ host: at.host, port: at.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : at.port;
  return { host: at.host, port };
}

/** Serves the admin endpoints at `at`; returns the server and the address it listens on, for the ready log line. */
export async function serveAdmin(options: AdminServerOptions, at: HostPort): Promise<{ admin: FastifyInstance; address: string }> {
  const admin = buildAdminServer(options);
  return { admin, address: formatHostPort(await listen(admin, at)) };
}
