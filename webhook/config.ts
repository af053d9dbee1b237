/** The webhook's one configuration source: flags, then KUEUER_* env vars, then defaults. */
import { logLevelOption } from '../shared/common-options.js';
import { integerIn, oneOf, parseHostPort, parseOptions, type OptionSpec, type OptionValues } from '../shared/options.js';
import type { InjectionConfig } from './pod-injection.js';
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

const QUANTITY = /^[+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/;
function quantityOption(flag: string, env: string, description: string, defaultValue: string): OptionSpec<string> {
  return {
    flag,
    env,
    description,
    defaultValue,
    parse: (raw) => {
      if (!QUANTITY.test(raw)) throw new Error(`expected a Kubernetes quantity such as 100m or 128Mi, got ${JSON.stringify(raw)}`);
      return raw;
    },
  };
}

export const webhookOptions = {
  listen: { flag: 'listen', env: 'KUEUER_LISTEN', description: 'HTTPS address the apiserver calls', defaultValue: '0.0.0.0:8443', parse: parseHostPort },
  tlsCert: fileOption('tls-cert', 'KUEUER_TLS_CERT', 'PEM serving certificate (reloaded when the file changes)'),
  tlsKey: fileOption('tls-key', 'KUEUER_TLS_KEY', 'PEM private key of the serving certificate (reloaded when the file changes)'),
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
    parse: (raw: string) => {
      if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(raw)) throw new Error(`expected a Secret name (a DNS label), got ${JSON.stringify(raw)}`);
      return raw;
    },
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
    parse: (raw: string) => {
      if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(raw)) throw new Error(`expected a Service name, got ${JSON.stringify(raw)}`);
      return raw;
    },
  },
  sidecarAdminPort: {
    flag: 'sidecar-admin-port',
    env: 'KUEUER_SIDECAR_ADMIN_PORT',
    description: "port of the injected sidecar's /metrics, /healthz and /readyz",
    defaultValue: '9091',
    parse: integerIn(1, 65535),
  },
  sidecarCpuRequest: quantityOption('sidecar-cpu-request', 'KUEUER_SIDECAR_CPU_REQUEST', "sidecar's CPU request", '50m'),
  sidecarMemoryRequest: quantityOption('sidecar-memory-request', 'KUEUER_SIDECAR_MEMORY_REQUEST', "sidecar's memory request", '64Mi'),
  sidecarMemoryLimit: quantityOption('sidecar-memory-limit', 'KUEUER_SIDECAR_MEMORY_LIMIT', "sidecar's memory limit", '256Mi'),
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

/** The webhook's default settings plus `args`, for tools that run the server without the CLI (tests, benchmark). */
export function defaultWebhookSettings(args: string[] = []): WebhookSettings {
  return parseOptions(webhookOptions, ['--tls-cert', 'unused', '--tls-key', 'unused', ...args], {});
}
