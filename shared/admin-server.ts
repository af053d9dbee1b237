/**
 * The operational endpoints of a component, on their own port so that every
 * path of the proxied port belongs to the app: /metrics (the component's own
 * prom-client registry), /healthz (the process is alive), /readyz (it can
 * do its job now, e.g. the broker is connected) and, for the sidecar, /drain.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type RawServerBase } from 'fastify';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { ClientErrorCode } from './error-catalogue.js';
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
   * app gets SIGTERM only after the sidecar stopped taking requests. It
   * changes state, so it needs `Authorization: Bearer <drainToken>` and
   * answers no other method (HEAD included: link checkers and monitors send it).
   */
  drain?: () => Promise<void>;
  /** The bearer token /drain requires (the webhook puts it in the pod's preStop hook); without one, /drain is refused. */
  drainToken?: string;
}

export interface DrainRefusal {
  status: 401 | 403;
  error: ClientErrorCode;
  message: string;
}

/** Why a /drain call with this Authorization header is refused, or null: the token is compared in constant time. */
export function drainRefusal(authorization: string | undefined, token: string | undefined): DrainRefusal | null {
  if (!token)
    return {
      status: 403,
      error: 'drain_disabled' satisfies ClientErrorCode,
      message: 'this process has no drain token (--drain-token, KUEUER_DRAIN_TOKEN), so /drain is refused; the webhook sets one in injected pods',
    };
  const given = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '')?.[1] ?? '';
  const digest = (v: string) => createHash('sha256').update(v).digest();
  if (given !== '' && timingSafeEqual(digest(given), digest(token))) return null;
  return {
    status: 401,
    error: 'drain_unauthorized' satisfies ClientErrorCode,
    message: "/drain needs the pod's drain token as Authorization: Bearer <token> (the injected preStop hook sends it)",
  };
}

/** Every method but GET on /drain: a state-changing route answers no HEAD (Fastify would add one to a GET). */
const NOT_DRAIN_METHODS = ['HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;

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
    app.route({
      method: 'GET',
      url: '/drain',
      exposeHeadRoute: false,
      handler: async (req, reply) => {
        const refusal = drainRefusal((req.headers as Record<string, string | undefined>).authorization, options.drainToken);
        if (refusal) {
          if (refusal.status === 401) reply.header('www-authenticate', 'Bearer realm="kueuer-drain"');
          req.log.warn({ remote: req.ip, status: refusal.status }, 'refused a /drain call');
          return reply.code(refusal.status).send({ error: refusal.error, message: refusal.message });
        }
        await drain();
        return { status: 'drained' };
      },
    });
    app.route({
      method: [...NOT_DRAIN_METHODS],
      url: '/drain',
      handler: async (req, reply) =>
        reply
          .code(405)
          .header('allow', 'GET')
          .send({ error: 'method_not_allowed' satisfies ClientErrorCode, message: `/drain answers GET only (with the drain token), not ${req.method}` }),
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
