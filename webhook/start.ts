/**
 * `kueuer webhook`: the start-up checks (TLS files, then the Kubernetes API),
 * then the cluster watches (Services, the responder's EndpointSlice mirror,
 * the autoscaler), then the HTTPS server, which is built last so that every
 * dependency it answers from exists before it listens.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { LeaderElection } from '../shared/kube/lease.js';
import { PortAllocations } from './admission/port-allocations.js';
import { listen } from '../shared/admin-server.js';
import { watchAllServices } from '../shared/kube/services.js';
import { newRegistry } from '../shared/metrics.js';
import type { Running } from '../shared/open-backend.js';
import { ConfigError, formatHostPort } from '../shared/options.js';
import { usedResponderPorts } from '../shared/service-routes.js';
import { kueuerVersion } from '../shared/version.js';
import { readRequestHeaderAuth, subjectAccessReviewer } from './autoscaling/delegated-auth.js';
import type { ExternalMetricsOptions } from './autoscaling/external-metrics-api.js';
import { autoscalingMetrics } from './autoscaling/metrics.js';
import { openQueueDepth } from '../shared/transport/create-transport.js';
import type { QueueDepthReader } from '../shared/transport/transport.js';
import { runAutoscaling, type AutoscalingReconciler } from './autoscaling/reconciler.js';
import { detectNativeSidecars } from './cluster-version.js';
import { startSelfIssuer, serviceDnsNames, type SelfIssuer } from './certs/self-issuer.js';
import { KUEUER_METRICS_SERVICE } from './autoscaling/metrics-owner.js';
import { BACKLOG_AUTH_SECRET } from './autoscaling/desired-objects.js';
import type { Cluster } from '../shared/kube/cluster.js';
import { certSettingsProblems, injectionConfig, type WebhookSettings } from './config.js';
import type { TlsFiles } from './tls-reloader.js';
import { runEndpointMirror } from './endpoints/endpoint-mirror.js';
import { leaderGauge, webhookMetrics } from './metrics.js';
import { checkKubernetesApi, checkTlsFiles } from './preflight.js';
import { buildWebhookServer } from './server.js';
import { clusterJobReader, JobWorkloads } from './admission/workload-queue.js';
import { clusterRefusalEvents } from './admission/refusal-events.js';

/** The external metrics API (and /backlog), answered from the queue depths and the autoscaler's plans. */
async function externalMetrics(
  cluster: Cluster,
  depth: QueueDepthReader | null,
  autoscaling: AutoscalingReconciler,
  allowedProxyNames: readonly string[],
): Promise<ExternalMetricsOptions> {
  return {
    backlog: async (queue: string) => {
      if (!depth) throw new Error('the webhook has no --backend to read queue depths from');
      return (await depth.read(queue)).backlog;
    },
    isManagedQueue: (queue: string) => autoscaling.plans().has(queue),
    allowedProxyNames,
    authorize: subjectAccessReviewer(cluster),
  };
}

/**
 * The serving certificate's files: given (secret, cert-manager: checked now), or issued by this
 * process into the Secret it shares with the other replicas, with the caBundles set before it returns.
 */
async function servingFiles(cluster: Cluster, o: WebhookSettings, log: Logger): Promise<{ files: TlsFiles; issuer: SelfIssuer | null }> {
  if (o.certSource !== 'self') return { files: { cert: o.tlsCert!, key: o.tlsKey! }, issuer: null };
  const issuer = await startSelfIssuer(cluster, {
    secret: { namespace: o.systemNamespace, name: o.certSecret },
    targets: { webhookConfiguration: o.webhookConfiguration, metricsService: { namespace: o.systemNamespace, name: KUEUER_METRICS_SERVICE.name } },
    policy: {
      caLifetimeMs: o.caLifetime,
      servingLifetimeMs: o.certLifetime,
      dnsNames: serviceDnsNames(KUEUER_METRICS_SERVICE.name, o.systemNamespace),
    },
    dir: o.certDir,
    checkIntervalMs: o.certCheckInterval,
    ...(o.autoscaling === 'keda' ? { kedaSecret: { namespace: o.kedaNamespace, name: BACKLOG_AUTH_SECRET } } : {}),
    log: log.child({ part: 'certs' }),
  });
  return { files: issuer.files, issuer };
}

/** The Lease the replicas compete for; its holder runs the controllers (mirror, autoscaler, Events, scale to zero). */
export const CONTROLLERS_LEASE = 'kueuer-webhook-controllers';
/** The ConfigMap holding responder port reservations (webhook/admission/port-allocations.ts). */
export const PORT_ALLOCATIONS = 'kueuer-responder-ports';

/** Competes for the controllers' Lease; `kueuer_webhook_leader` is 1 on the leader, 0 elsewhere. Returns after the first attempt. */
async function electLeader(
  cluster: Cluster,
  namespace: string,
  registry: Registry,
  log: Logger,
  onChange: (leading: boolean) => void,
): Promise<LeaderElection> {
  const gauge = leaderGauge(registry);
  gauge.set(0);
  const election = new LeaderElection(cluster.clients.coordination, (ms) => cluster.microTime(ms), {
    namespace,
    name: CONTROLLERS_LEASE,
    identity: `${hostname()}_${randomUUID().slice(0, 8)}`,
    log: log.child({ part: 'leader-election' }),
    onChange: (leading) => {
      gauge.set(leading ? 1 : 0);
      onChange(leading);
    },
  });
  await election.start();
  return election;
}

export async function runWebhook(o: WebhookSettings, log: Logger): Promise<Running> {
  const problems = certSettingsProblems(o);
  if (problems.length > 0) throw new ConfigError(problems);
  // Before anything touches the cluster: the TLS files, then a configuration and an API server that answers.
  if (o.certSource !== 'self') checkTlsFiles({ cert: o.tlsCert!, key: o.tlsKey! });
  // The one Cluster of this process: every part below reaches the API through it.
  const cluster = await checkKubernetesApi();
  const registry = newRegistry();
  const nativeSidecars = o.nativeSidecars === 'auto' ? await detectNativeSidecars(cluster, log) : o.nativeSidecars === 'true';
  const depth = o.backend && o.autoscaling !== 'off' ? await openQueueDepth(o.backend, log, o.rabbitmqManagementUrl) : null;
  const requestHeader = o.autoscaling === 'external' ? await readRequestHeaderAuth(cluster, log) : null;
  // Responder ports are handed out against every Service in the cluster.
  const services = await watchAllServices(log, cluster);
  let leading = false;
  const isLeader = () => leading;
  const mirror = await runEndpointMirror(cluster, services, o.systemNamespace, o.responderService, log, isLeader);
  const autoscaling =
    o.autoscaling === 'off'
      ? null
      : await runAutoscaling({
          cluster,
          mode: o.autoscaling,
          depth,
          backlogUrl: o.backlogUrl,
          pollMs: o.autoscalingPollInterval,
          metrics: autoscalingMetrics(registry),
          log: log.child({ part: 'autoscaling' }),
          isLeader,
        });
  const election = await electLeader(cluster, o.systemNamespace, registry, log, (now) => {
    leading = now;
    // A new leader writes at once what the previous one may have left undone.
    if (now) void mirror.reconcile().then(() => autoscaling?.reconcile());
  });
  const allocations = new PortAllocations(cluster.clients.core, { namespace: o.systemNamespace, name: PORT_ALLOCATIONS }, () => services.list());
  // Last before the server: with self-issued certificates, the caBundles are set once this returns.
  const { files, issuer } = await servingFiles(cluster, o, log);
  const app = buildWebhookServer({
    ...(requestHeader ? { clientCa: requestHeader.ca } : {}),
    // Without a requestheader CA no client certificate verifies, so every metrics request is refused.
    ...(autoscaling ? { externalMetrics: await externalMetrics(cluster, depth, autoscaling, requestHeader?.allowedNames ?? []) } : {}),
    ports: {
      usedPorts: (except) => new Set([...usedResponderPorts(services.list(), except), ...allocations.reservedPorts(except)]),
      reserve: (service, port) => allocations.reserve(service, port),
      refresh: () => allocations.refresh(),
    },
    tls: files,
    config: injectionConfig(o, nativeSidecars, kueuerVersion()),
    registry,
    metrics: webhookMetrics(registry),
    jobs: new JobWorkloads(clusterJobReader(cluster)),
    refusalEvents: clusterRefusalEvents(cluster, log),
    log,
  });
  const address = await listen(app, o.listen);
  log.info(
    {
      listen: formatHostPort(address),
      leader: election.isLeader(),
      certSource: o.certSource,
      nativeSidecars,
      image: o.sidecarImage,
      autoscaling: o.autoscaling,
      depthFrom: depth?.kind ?? null,
    },
    'webhook ready',
  );
  return {
    async stop() {
      issuer?.stop();
      // Released first, so another replica takes the controllers over while this one drains.
      await election.stop();
      await app.close();
      await mirror.stop();
      await services.stop();
      await autoscaling?.stop();
      await depth?.close();
    },
  };
}
