/**
 * The operational endpoints of a component, on their own port so that every
 * path of the proxied port belongs to the app: /metrics (the component's own
 * prom-client registry), /healthz (the process is alive) and /readyz (it can
 * do its job now, e.g. the broker is connected).
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { HostPort } from './options.js';

export interface AdminServerOptions {
  registry: Registry;
  /** Returns null when ready, or the reason it is not. */
  notReadyReason: () => string | null;
  log: Logger;
}

export function buildAdminServer(options: AdminServerOptions): FastifyInstance {
  const app = Fastify({ loggerInstance: options.log.child({ server: 'admin' }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
  });
  app.get('/metrics', async (_req, reply) => {
    reply.header('content-type', options.registry.contentType);
    return options.registry.metrics();
  });
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    const reason = options.notReadyReason();
    if (reason !== null) return reply.code(503).send({ status: 'not ready', reason });
    return { status: 'ready' };
  });
  return app;
}

export async function listen(app: FastifyInstance, at: HostPort): Promise<HostPort> {
  await app.listen({ host: at.host, port: at.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : at.port;
  return { host: at.host, port };
}
