/**
 * `external.metrics.k8s.io/v1beta1`, served on the webhook's HTTPS server as
 * an aggregated API (the APIService in manifests/), so the HPA reads queue
 * backlogs straight from the broker without Prometheus in the path.
 *
 * Authentication and authorization are delegated the way the aggregation
 * layer requires: the apiserver's front-proxy client certificate is verified
 * against the requestheader CA (from kube-system's
 * extension-apiserver-authentication ConfigMap) and its common name against
 * the allowed names; the user it names in X-Remote-User / X-Remote-Group is
 * then checked with a SubjectAccessReview.
 *
 * Also GET /backlog/<queue>: the same number as JSON, for KEDA's metrics-api
 * scaler in `keda` mode.
 */
import type { TLSSocket } from 'node:tls';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { BACKLOG_METRIC } from './desired-objects.js';

export const EXTERNAL_METRICS_GROUP_VERSION = 'external.metrics.k8s.io/v1beta1';

export interface RequestIdentity {
  user: string;
  groups: string[];
}

export interface ExternalMetricsOptions {
  /** Fresh backlog of a queue, from the broker. */
  backlog(queue: string): Promise<number>;
  /** Queues of workloads Kueuer scales; others are not served. */
  isManagedQueue(queue: string): boolean;
  /** Names allowed as the front proxy's certificate CN (empty: any cert from the CA). */
  allowedProxyNames: readonly string[];
  /** SubjectAccessReview: may this identity get this metric in this namespace? */
  authorize(identity: RequestIdentity, namespace: string, metric: string): Promise<boolean>;
}

function status(reply: FastifyReply, code: number, reason: string, message: string) {
  return reply.code(code).send({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code });
}

/** Who the aggregator says is asking, or why the request is not from the aggregator. */
export function proxiedIdentity(req: FastifyRequest, allowedNames: readonly string[]): RequestIdentity | string {
  const socket = req.raw.socket as TLSSocket;
  if (typeof socket.getPeerCertificate !== 'function' || !socket.authorized) return 'no client certificate signed by the requestheader CA';
  const cn = socket.getPeerCertificate().subject?.CN;
  const name = Array.isArray(cn) ? cn[0] : cn;
  if (allowedNames.length > 0 && (!name || !allowedNames.includes(name)))
    return `client certificate CN ${JSON.stringify(name)} is not an allowed requestheader name`;
  const user = req.headers['x-remote-user'];
  if (typeof user !== 'string' || user === '') return 'no X-Remote-User header';
  const g = req.headers['x-remote-group'];
  const groups = (Array.isArray(g) ? g : g ? [g] : [])
    .flatMap((v) => v.split(','))
    .map((v) => v.trim())
    .filter(Boolean);
  return { user, groups };
}

/** `queue=ns.name` (or `queue in (ns.name)`) from an HPA's metric selector. */
export function queueFromSelector(selector: string | undefined): string | null {
  if (!selector) return null;
  const eq = /^queue\s*==?\s*([A-Za-z0-9._-]+)$/.exec(selector.trim());
  if (eq) return eq[1]!;
  const inSet = /^queue\s+in\s+\(\s*([A-Za-z0-9._-]+)\s*\)$/.exec(selector.trim());
  return inSet ? inSet[1]! : null;
}

export function registerExternalMetrics(app: FastifyInstance, options: ExternalMetricsOptions): void {
  const base = `/apis/${EXTERNAL_METRICS_GROUP_VERSION}`;
  const authenticated = async (req: FastifyRequest, reply: FastifyReply, namespace: string | null, metric: string) => {
    const who = proxiedIdentity(req, options.allowedProxyNames);
    if (typeof who === 'string') {
      req.log.warn({ reason: who }, 'refused an external metrics request');
      await status(reply, 401, 'Unauthorized', who);
      return false;
    }
    if (namespace !== null && !(await options.authorize(who, namespace, metric))) {
      await status(reply, 403, 'Forbidden', `${who.user} may not get ${metric} in namespace ${namespace}`);
      return false;
    }
    return true;
  };

  app.get(base, async (req, reply) => {
    if (!(await authenticated(req, reply, null, BACKLOG_METRIC))) return reply;
    return {
      kind: 'APIResourceList',
      apiVersion: 'v1',
      groupVersion: EXTERNAL_METRICS_GROUP_VERSION,
      resources: [{ name: BACKLOG_METRIC, singularName: '', namespaced: true, kind: 'ExternalMetricValueList', verbs: ['get'] }],
    };
  });

  app.get<{ Params: { namespace: string; metric: string }; Querystring: { labelSelector?: string } }>(
    `${base}/namespaces/:namespace/:metric`,
    async (req, reply) => {
      const { namespace, metric } = req.params;
      if (!(await authenticated(req, reply, namespace, metric))) return reply;
      if (metric !== BACKLOG_METRIC) return status(reply, 404, 'NotFound', `no external metric ${metric}; Kueuer serves ${BACKLOG_METRIC}`);
      const queue = queueFromSelector(req.query.labelSelector);
      if (!queue) return status(reply, 400, 'BadRequest', `${BACKLOG_METRIC} needs the label selector queue=<namespace>.<name>`);
      // A namespace reads only its own queues.
      if (!queue.startsWith(`${namespace}.`) || !options.isManagedQueue(queue)) {
        return status(reply, 404, 'NotFound', `queue ${queue} is not a Kueuer queue of namespace ${namespace}`);
      }
      let value: number;
      try {
        value = await options.backlog(queue);
      } catch (err) {
        req.log.warn({ err: (err as Error).message, queue }, 'cannot read the queue depth for the HPA');
        return status(reply, 503, 'ServiceUnavailable', `cannot read the depth of queue ${queue} from the broker: ${(err as Error).message}`);
      }
      return {
        kind: 'ExternalMetricValueList',
        apiVersion: EXTERNAL_METRICS_GROUP_VERSION,
        metadata: {},
        items: [{ metricName: metric, metricLabels: { queue }, timestamp: new Date().toISOString(), value: String(value) }],
      };
    },
  );

  app.get<{ Params: { queue: string } }>('/backlog/:queue', async (req, reply) => {
    const { queue } = req.params;
    if (!options.isManagedQueue(queue)) return reply.code(404).send({ error: 'unknown_queue', message: `queue ${queue} is not a queue Kueuer scales` });
    try {
      return { queue, backlog: await options.backlog(queue) };
    } catch (err) {
      return reply.code(503).send({ error: 'broker_unavailable', message: (err as Error).message });
    }
  });
}
