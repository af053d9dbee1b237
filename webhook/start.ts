/**
 * `kueuer webhook`: the start-up checks (TLS files, then the Kubernetes API),
 * then the cluster watches (Services, the responder's EndpointSlice mirror,
 * the autoscaler), then the HTTPS server, which is built last so that every
 * dependency it answers from exists before it listens.
 */
import type { Logger } from 'pino';
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
import { kubeConfig } from '../shared/kube/object-source.js';
import { certSettingsProblems, injectionConfig, type WebhookSettings } from './config.js';
import type { TlsFiles } from './tls-reloader.js';
import { runEndpointMirror } from './endpoint-mirror.js';
import { webhookMetrics } from './metrics.js';
import { checkKubernetesApi, checkTlsFiles } from './preflight.js';
import { buildWebhookServer } from './server.js';

/** The external metrics API (and /backlog), answered from the queue depths and the autoscaler's plans. */
async function externalMetrics(
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
    authorize: await subjectAccessReviewer(),
  };
}

/**
 * The serving certificate's files: given (secret, cert-manager: checked now), or issued by this
 * process into the Secret it shares with the other replicas, with the caBundles set before it returns.
 */
async function servingFiles(o: WebhookSettings, log: Logger): Promise<{ files: TlsFiles; issuer: SelfIssuer | null }> {
  if (o.certSource !== 'self') return { files: { cert: o.tlsCert!, key: o.tlsKey! }, issuer: null };
  const issuer = await startSelfIssuer(await kubeConfig(), {
    secret: { namespace: o.systemNamespace, name: o.certSecret },
    targets: { webhookConfiguration: o.webhookConfiguration, metricsService: { namespace: o.systemNamespace, name: KUEUER_METRICS_SERVICE.name } },
    policy: {
      caLifetimeMs: o.caLifetime,
      servingLifetimeMs: o.certLifetime,
      dnsNames: serviceDnsNames(KUEUER_METRICS_SERVICE.name, o.systemNamespace),
    },
    dir: o.certDir,
    checkIntervalMs: o.certCheckInterval,
    log: log.child({ part: 'certs' }),
  });
  return { files: issuer.files, issuer };
}

export async function runWebhook(o: WebhookSettings, log: Logger): Promise<Running> {
  const problems = certSettingsProblems(o);
  if (problems.length > 0) throw new ConfigError(problems);
  // Before anything touches the cluster: the TLS files, then a configuration and an API server that answers.
  if (o.certSource !== 'self') checkTlsFiles({ cert: o.tlsCert!, key: o.tlsKey! });
  await checkKubernetesApi();
  const registry = newRegistry();
  const nativeSidecars = o.nativeSidecars === 'auto' ? await detectNativeSidecars(log) : o.nativeSidecars === 'true';
  const depth = o.backend && o.autoscaling !== 'off' ? await openQueueDepth(o.backend, log, o.rabbitmqManagementUrl) : null;
  const requestHeader = o.autoscaling === 'external' ? await readRequestHeaderAuth(log) : null;
  // Responder ports are handed out against every Service in the cluster.
  const services = await watchAllServices(log);
  const mirror = await runEndpointMirror(services, o.systemNamespace, o.responderService, log);
  const autoscaling =
    o.autoscaling === 'off'
      ? null
      : await runAutoscaling({
          mode: o.autoscaling,
          depth,
          backlogUrl: o.backlogUrl,
          pollMs: o.autoscalingPollInterval,
          metrics: autoscalingMetrics(registry),
          log: log.child({ part: 'autoscaling' }),
        });
  // Last before the server: with self-issued certificates, the caBundles are set once this returns.
  const { files, issuer } = await servingFiles(o, log);
  const app = buildWebhookServer({
    ...(requestHeader ? { clientCa: requestHeader.ca } : {}),
    // Without a requestheader CA no client certificate verifies, so every metrics request is refused.
    ...(autoscaling ? { externalMetrics: await externalMetrics(depth, autoscaling, requestHeader?.allowedNames ?? []) } : {}),
    ports: { usedPorts: (except) => usedResponderPorts(services.list(), except) },
    tls: files,
    config: injectionConfig(o, nativeSidecars, kueuerVersion()),
    registry,
    metrics: webhookMetrics(registry),
    log,
  });
  const address = await listen(app, o.listen);
  log.info(
    {
      listen: formatHostPort(address),
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
      await app.close();
      await mirror.stop();
      await services.stop();
      await autoscaling?.stop();
      await depth?.close();
    },
  };
}
