/**
 * The admission webhook's HTTPS server: POST /mutate takes AdmissionReview v1
 * for Pods (and Services), plus /healthz, /readyz and /metrics.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { V1Pod } from '@kubernetes/client-node';
import type { Server } from 'node:https';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { registerAdminRoutes } from '../shared/admin-server.js';
import { errorBody } from '../shared/error-catalogue.js';
import { newRequestId } from '../shared/request-id.js';
import { BadReviewError, mayLeaveTraces, parseAdmissionReview, reviewOf } from './admission/admission-review.js';
import type { WebhookMetrics } from './metrics.js';
import { mutate, type PortRegistry } from './admission/mutate.js';
import { registerExternalMetrics, type ExternalMetricsOptions } from './autoscaling/external-metrics-api.js';
import type { InjectionConfig } from './admission/pod-injection.js';
import { readTls, watchTls, type TlsFiles } from './tls-reloader.js';
import type { JobWorkloads } from './admission/workload-queue.js';
import type { RefusalEvents } from './admission/refusal-events.js';

export interface WebhookServerOptions {
  tls: TlsFiles;
  config: InjectionConfig;
  /** Which responder ports other Services hold (a cluster-wide Service cache in production). */
  ports: PortRegistry;
  registry: Registry;
  metrics: WebhookMetrics;
  log: Logger;
  /** Poll interval of the certificate files. */
  tlsPollMs?: number;
  /** The aggregation layer's requestheader CA: client certificates are asked for and verified against it. */
  clientCa?: Buffer;
  /** Serves external.metrics.k8s.io (and /backlog) when set. */
  externalMetrics?: ExternalMetricsOptions;
  /** Reads the Jobs of Job-owned pods (the cluster's in production: clusterJobReader). */
  jobs: JobWorkloads;
  /** Records a refused pod on its workload (Events through the cluster in production: clusterRefusalEvents). */
  refusalEvents: RefusalEvents;
}

/** An AdmissionReview of the largest pod etcd stores (1.5 MiB), with room for its old object. */
const BODY_LIMIT = 4 * 1024 * 1024;

/** The webhook's Fastify instance: HTTPS, with the process's pino logger. */
export type WebhookServer = FastifyInstance<Server, IncomingMessage, ServerResponse, FastifyBaseLogger>;

export function buildWebhookServer(options: WebhookServerOptions): WebhookServer {
  const { log, metrics } = options;
  const { jobs, refusalEvents } = options;
  // A client certificate is asked for, never required: the apiserver calls /mutate without one.
  const clientAuth = options.clientCa ? { ca: options.clientCa, requestCert: true, rejectUnauthorized: false } : {};
  const app: WebhookServer = Fastify({
    https: { ...readTls(options.tls), ...clientAuth },
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion -- it fixes Fastify's logger generic to FastifyBaseLogger, which the instance's declared type needs
    loggerInstance: log as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: BODY_LIMIT,
  });

  const stopWatching = watchTls(app.server, options.tls, log, (ok) => metrics.tlsReload(ok ? 'ok' : 'error'), options.tlsPollMs, clientAuth);
  app.addHook('onClose', async () => stopWatching());

  // Admission time counts from the first byte of the request to the last of the answer: body parsing included.
  const startedAt = new WeakMap<object, bigint>();
  const outcomes = new WeakMap<object, { kind: string; outcome: string }>();
  app.addHook('onRequest', async (req) => {
    if (req.url === '/mutate') startedAt.set(req, process.hrtime.bigint());
  });
  app.addHook('onResponse', async (req) => {
    const started = startedAt.get(req);
    const result = outcomes.get(req);
    if (started === undefined) return;
    metrics.admitted(result?.kind ?? 'unknown', result?.outcome ?? 'bad_request', Number(process.hrtime.bigint() - started) / 1e9);
  });

  app.post('/mutate', async (req, reply) => {
    let request;
    try {
      request = parseAdmissionReview(req.body);
    } catch (err) {
      if (!(err instanceof BadReviewError)) throw err;
      const id = newRequestId();
      req.log.warn({ reqId: id, err: err.message }, 'refused a request that is not an AdmissionReview v1');
      return reply
        .code(400)
        .type('application/json')
        .send(errorBody('bad_admission_review', err.message, id));
    }
    const { response, outcome } = await mutate(request, options.config, options.ports, jobs, req.log as unknown as Logger);
    const kind = request.kind.kind;
    outcomes.set(req, { kind, outcome });
    const ns = request.namespace ?? '';
    const name = request.name || (request.object as { metadata?: { generateName?: string } })?.metadata?.generateName || '';
    if (outcome === 'refused' || outcome === 'error') req.log.warn({ uid: request.uid, kind, ns, name, message: response.status?.message }, 'refused');
    else if (outcome === 'injected') req.log.info({ uid: request.uid, kind, ns, name }, 'injected');
    if (outcome === 'refused' && kind === 'Pod' && mayLeaveTraces(request)) refusalEvents(request.object as V1Pod, ns, response.status?.message ?? '');
    return reviewOf(response);
  });
  if (options.externalMetrics) registerExternalMetrics(app, options.externalMetrics);
  registerAdminRoutes(app, { registry: options.registry });
  return app;
}
