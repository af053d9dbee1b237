/** The webhook's one configuration source: flags, then KUEUER_* env vars, then defaults. */
import { backendOption, logLevelOption } from '../shared/common-options.js';
import { dnsLabel, durationIn, integerIn, oneOf, parseHostPort, parseOptions, type OptionSpec, type OptionValues } from '../shared/options.js';
import { parseQuantity } from '../shared/quantity.js';
import { SIDECAR_ADMIN_PORT } from '../sidecar/config.js';
import { METRIC_MODES } from './autoscaling/desired-objects.js';
import type { InjectionConfig } from './admission/pod-injection.js';
import { kueuerVersion } from '../shared/version.js';

function fileOption(flag: string, env: string, description: string): OptionSpec<string> {
  return {
    flag,
    env,
    description,
    parse: (raw) => {
      if (raw.trim() === '') throw new Error('expected a file path');
      return raw;
    },
  };
}

export const CERT_SOURCES = ['self', 'secret', 'cert-manager'] as const;
const DAY_MS = 86_400_000;

function quantityOption(flag: string, env: string, description: string, defaultValue: string): OptionSpec<string> {
  return { flag, env, description, defaultValue, parse: parseQuantity };
}

export const webhookOptions = {
  listen: { flag: 'listen', env: 'KUEUER_LISTEN', description: 'HTTPS address the apiserver calls', defaultValue: '0.0.0.0:8443', parse: parseHostPort },
  certSource: {
    flag: 'cert-source',
    env: 'KUEUER_CERT_SOURCE',
    description:
      'where the serving certificate comes from: self (the webhook issues its CA and certificate into --cert-secret, sets the caBundles and rotates them; what the manifests and the chart use), secret (files you provide, e.g. scripts/install.sh) or cert-manager (files cert-manager renews); secret and cert-manager need --tls-cert and --tls-key',
    defaultValue: 'secret',
    parse: oneOf(CERT_SOURCES),
  },
  tlsCert: {
    ...fileOption('tls-cert', 'KUEUER_TLS_CERT', 'PEM serving certificate (reloaded when the file changes); --cert-source secret or cert-manager'),
    optional: true as const,
  },
  tlsKey: {
    ...fileOption(
      'tls-key',
      'KUEUER_TLS_KEY',
      'PEM private key of the serving certificate (reloaded when the file changes); --cert-source secret or cert-manager',
    ),
    optional: true as const,
  },
  certDir: {
    flag: 'cert-dir',
    env: 'KUEUER_CERT_DIR',
    description: '--cert-source self: writable directory the issued tls.crt and tls.key are written to and served from',
    defaultValue: '/var/run/kueuer/tls',
    parse: (raw: string) => {
      if (raw.trim() === '') throw new Error('expected a directory path');
      return raw;
    },
  },
  certSecret: {
    flag: 'cert-secret',
    env: 'KUEUER_CERT_SECRET',
    description: '--cert-source self: the Secret in the system namespace holding the CA, its key and the serving certificate, shared by the replicas',
    defaultValue: 'kueuer-webhook-tls',
    parse: dnsLabel('a Secret name (a DNS label)'),
  },
  webhookConfiguration: {
    flag: 'webhook-configuration',
    env: 'KUEUER_WEBHOOK_CONFIGURATION',
    description: '--cert-source self: the MutatingWebhookConfiguration whose caBundle the webhook sets',
    defaultValue: 'kueuer',
    parse: dnsLabel('a MutatingWebhookConfiguration name'),
  },
  certLifetime: {
    flag: 'cert-lifetime',
    env: 'KUEUER_CERT_LIFETIME',
    description: '--cert-source self: lifetime of the serving certificate; renewed at two thirds of it',
    defaultValue: '2160h',
    parse: durationIn(5_000, 10 * 365 * DAY_MS),
  },
  caLifetime: {
    flag: 'ca-lifetime',
    env: 'KUEUER_CA_LIFETIME',
    description:
      '--cert-source self: lifetime of the CA (at least --cert-lifetime); a new CA is made at two thirds of it, the old one stays trusted until it expires',
    defaultValue: '43800h',
    parse: durationIn(5_000, 20 * 365 * DAY_MS),
  },
  certCheckInterval: {
    flag: 'cert-check-interval',
    env: 'KUEUER_CERT_CHECK_INTERVAL',
    description:
      '--cert-source self: how often the Secret and the caBundles are checked (another replica may have renewed; an apply may have emptied a caBundle)',
    defaultValue: '1m',
    parse: durationIn(100, 3_600_000),
  },
  sidecarImage: {
    flag: 'sidecar-image',
    env: 'KUEUER_SIDECAR_IMAGE',
    description: 'image injected as the sidecar (runs `kueuer sidecar`)',
    defaultValue: `ghcr.io/kueuer/kueuer:${kueuerVersion()}`,
    parse: (raw: string) => {
      if (!/^[^\s]+$/.test(raw)) throw new Error(`expected an image reference without spaces, got ${JSON.stringify(raw)}`);
      return raw;
    },
  },
  backendSecret: {
    flag: 'backend-secret',
    env: 'KUEUER_BACKEND_SECRET',
    description: 'Secret in each app namespace whose keys (KUEUER_BACKEND, …) the sidecar reads, unless the pod names another with kueuer.io/backend',
    defaultValue: 'kueuer-backend',
    parse: dnsLabel('a Secret name (a DNS label)'),
  },
  nativeSidecars: {
    flag: 'native-sidecars',
    env: 'KUEUER_NATIVE_SIDECARS',
    description: 'inject the sidecar as a native sidecar (init container with restartPolicy Always): auto = when the apiserver is ≥ 1.29',
    defaultValue: 'auto',
    parse: oneOf(['auto', 'true', 'false'] as const),
  },
  systemNamespace: {
    flag: 'system-namespace',
    env: 'KUEUER_SYSTEM_NAMESPACE',
    description: "Kueuer's own namespace, never injected (kube-system never is either)",
    defaultValue: 'kueuer-system',
    parse: (raw: string) => raw,
  },
  responderService: {
    flag: 'responder-service',
    env: 'KUEUER_RESPONDER_SERVICE',
    description: "the responder's Service in the system namespace; queued Services get EndpointSlices listing its pods",
    defaultValue: 'kueuer-responder',
    parse: dnsLabel('a Service name'),
  },
  sidecarAdminPort: {
    flag: 'sidecar-admin-port',
    env: 'KUEUER_SIDECAR_ADMIN_PORT',
    description: "port of the injected sidecar's /metrics, /healthz and /readyz",
    defaultValue: String(SIDECAR_ADMIN_PORT),
    parse: integerIn(1, 65535),
  },
  sidecarCpuRequest: quantityOption('sidecar-cpu-request', 'KUEUER_SIDECAR_CPU_REQUEST', "sidecar's CPU request", '50m'),
  // Measured (docs/soak.md): a sidecar idles at ~89 MiB RSS and plateaus at ~138 MiB at concurrency 32 with its heap bounded to a quarter of the limit.
  sidecarMemoryRequest: quantityOption('sidecar-memory-request', 'KUEUER_SIDECAR_MEMORY_REQUEST', "sidecar's memory request", '128Mi'),
  sidecarMemoryLimit: quantityOption('sidecar-memory-limit', 'KUEUER_SIDECAR_MEMORY_LIMIT', "sidecar's memory limit", '256Mi'),
  autoscaling: {
    flag: 'autoscaling',
    env: 'KUEUER_AUTOSCALING',
    description:
      'autoscaler per opted-in workload: external (HPA on kueuer_queue_backlog served by this process as external.metrics.k8s.io), prometheus-adapter (the same HPA, metric from prometheus-adapter), keda (a KEDA ScaledObject), or off',
    defaultValue: 'external',
    parse: oneOf([...METRIC_MODES, 'off'] as const),
  },
  kedaNamespace: {
    flag: 'keda-namespace',
    env: 'KUEUER_KEDA_NAMESPACE',
    description:
      "keda mode: KEDA's namespace (its KEDA_CLUSTER_OBJECT_NAMESPACE), where the ClusterTriggerAuthentication reads the Secret kueuer-backlog-tls; with --cert-source self the webhook keeps that Secret's ca.crt equal to its CA bundle",
    defaultValue: 'keda',
    parse: dnsLabel('a namespace name (a DNS label)'),
  },
  backend: {
    ...backendOption(),
    description: 'broker whose queue depths the autoscaler reads (amqp://… or kafka://…); without it there is no scale to zero and no metric to serve',
    optional: true as const,
  },
  rabbitmqManagementUrl: {
    flag: 'rabbitmq-management-url',
    env: 'KUEUER_RABBITMQ_MANAGEMENT_URL',
    description:
      "RabbitMQ's management API, for ready + unacked counts; comma-separated URLs of several nodes are tried in turn (default: each AMQP node's host and the AMQP credentials on port 15672)",
    optional: true as const,
    parse: (raw: string) => {
      for (const one of raw.split(',')) {
        const url = new URL(one.trim());
        if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`expected http(s):// URLs, got ${JSON.stringify(one)}`);
      }
      return raw;
    },
  },
  autoscalingPollInterval: {
    flag: 'autoscaling-poll-interval',
    env: 'KUEUER_AUTOSCALING_POLL_INTERVAL',
    description: 'how often queue depths are read for /metrics, scale to zero and Kafka partition caps',
    defaultValue: '5s',
    parse: durationIn(500, 600_000),
  },
  backlogUrl: {
    flag: 'backlog-url',
    env: 'KUEUER_BACKLOG_URL',
    description: "keda mode: base URL of this process's /backlog endpoint, as KEDA's metrics-api scaler reaches it",
    defaultValue: 'https://kueuer-webhook.kueuer-system.svc/backlog',
    parse: (raw: string) => {
      new URL(raw);
      return raw.replace(/\/$/, '');
    },
  },
  logLevel: logLevelOption(),
};

export type WebhookSettings = OptionValues<typeof webhookOptions>;

/** What the pod injection needs, from the webhook's settings: the one place its defaults come from. */
export function injectionConfig(o: WebhookSettings, nativeSidecars: boolean, version: string): InjectionConfig {
  return {
    image: o.sidecarImage,
    version,
    defaultBackendSecret: o.backendSecret,
    nativeSidecars,
    adminPort: o.sidecarAdminPort,
    excludedNamespaces: ['kube-system', o.systemNamespace],
    resources: { cpuRequest: o.sidecarCpuRequest, memoryRequest: o.sidecarMemoryRequest, memoryLimit: o.sidecarMemoryLimit },
  };
}

/** The checks between settings, once at start-up: each problem names the flags involved. */
export function certSettingsProblems(o: Pick<WebhookSettings, 'certSource' | 'tlsCert' | 'tlsKey' | 'certLifetime' | 'caLifetime'>): string[] {
  const problems: string[] = [];
  if (o.certSource !== 'self' && (!o.tlsCert || !o.tlsKey))
    problems.push(
      `--cert-source ${o.certSource} (KUEUER_CERT_SOURCE) needs --tls-cert and --tls-key (KUEUER_TLS_CERT, KUEUER_TLS_KEY): the files of the mounted Secret; or --cert-source self to issue them`,
    );
  if (o.certSource === 'self' && o.caLifetime < o.certLifetime)
    problems.push(`--ca-lifetime (KUEUER_CA_LIFETIME, ${o.caLifetime} ms) must be at least --cert-lifetime (KUEUER_CERT_LIFETIME, ${o.certLifetime} ms)`);
  return problems;
}

/** The webhook's default settings plus `args`, for tools that run the server without the CLI (tests, benchmark). */
export function defaultWebhookSettings(args: string[] = []): WebhookSettings {
  return parseOptions(webhookOptions, ['--tls-cert', 'unused', '--tls-key', 'unused', ...args], {});
}
