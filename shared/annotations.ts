/**
 * The `kueuer.io/` annotation and label keys, and the validation of their
 * values. Pure: every function takes an object's annotations and returns
 * either settings or the list of problems, each naming the annotation and
 * what it accepts. A typo refuses the object; it is never silently ignored.
 */
import { isValidQueueName } from '../shared/envelope.js';
import { durationIn, integerIn } from '../shared/options.js';
import { KAFKA_DELIVERIES, type KafkaDelivery } from '../shared/transport/kafka.js';

export const PREFIX = 'kueuer.io/';
export const ANNOTATIONS = {
  inject: `${PREFIX}inject`,
  appPort: `${PREFIX}app-port`,
  adminPort: `${PREFIX}admin-port`,
  queue: `${PREFIX}queue`,
  backend: `${PREFIX}backend`,
  concurrency: `${PREFIX}concurrency`,
  delivery: `${PREFIX}delivery`,
  timeout: `${PREFIX}timeout`,
  nativeSidecar: `${PREFIX}native-sidecar`,
  sidecarCpuRequest: `${PREFIX}sidecar-cpu-request`,
  sidecarMemoryRequest: `${PREFIX}sidecar-memory-request`,
  sidecarCpuLimit: `${PREFIX}sidecar-cpu-limit`,
  sidecarMemoryLimit: `${PREFIX}sidecar-memory-limit`,
  autoscale: `${PREFIX}autoscale`,
  minReplicas: `${PREFIX}min-replicas`,
  maxReplicas: `${PREFIX}max-replicas`,
  targetBacklog: `${PREFIX}target-backlog`,
  scaleDownStabilization: `${PREFIX}scale-down-stabilization`,
  idleCooldown: `${PREFIX}idle-cooldown`,
  /** Written by the webhook: what it injected, in which version. */
  status: `${PREFIX}status`,
  /** Written by the webhook on Services: the original selector and ports, to restore them. */
  originalService: `${PREFIX}original-service`,
  /** Written by the webhook on Services: the responder port allocated to it. */
  responderPort: `${PREFIX}responder-port`,
} as const;

export const NAMESPACE_LABEL = `${PREFIX}injection`;
export const NAMESPACE_LABEL_VALUE = 'enabled';

export type Annotations = Record<string, string> | undefined;

export interface PodSettings {
  /** Explicit app port: a number, or a container port name to resolve. */
  appPort?: number | string;
  /** The sidecar's admin port (/metrics, /healthz, /readyz), when not the webhook's --sidecar-admin-port. */
  adminPort?: number;
  queue?: string;
  backendSecret?: string;
  concurrency?: number;
  /** Kafka only: when a request's offset is committed. */
  delivery?: KafkaDelivery;
  nativeSidecar?: boolean;
  resources: { cpuRequest?: string; memoryRequest?: string; cpuLimit?: string; memoryLimit?: string };
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; problems: string[] };

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const PORT_NAME = /^[a-z0-9]([-a-z0-9]{0,13}[a-z0-9])?$/;
/** Kubernetes resource.Quantity, as kubectl accepts it. */
const QUANTITY = /^[+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei|e[0-9]+)?$/;

/** `"true"` or `"false"`; anything else (yes, True, 1) is refused. */
export function parseBoolean(annotations: Annotations, key: string, problems: string[]): boolean | undefined {
  const raw = annotations?.[key];
  if (raw === undefined) return undefined;
  if (raw === 'true') return true;
  if (raw === 'false') return false;
  problems.push(`${key}: ${JSON.stringify(raw)} is not accepted; use "true" or "false"`);
  return undefined;
}

/** Whether the object asks for Kueuer: `kueuer.io/inject: "true"`. */
export function wantsInjection(annotations: Annotations): Parsed<boolean> {
  const problems: string[] = [];
  const value = parseBoolean(annotations, ANNOTATIONS.inject, problems);
  return problems.length ? { ok: false, problems } : { ok: true, value: value === true };
}

export function parsePodSettings(annotations: Annotations): Parsed<PodSettings> {
  const a = annotations ?? {};
  const problems: string[] = [];
  const settings: PodSettings = { resources: {} };

  const port = a[ANNOTATIONS.appPort];
  if (port !== undefined) {
    if (/^\d+$/.test(port) && Number(port) >= 1 && Number(port) <= 65535) settings.appPort = Number(port);
    else if (PORT_NAME.test(port) && /[a-z]/.test(port)) settings.appPort = port;
    else problems.push(`${ANNOTATIONS.appPort}: ${JSON.stringify(port)} is not accepted; use a port number from 1 to 65535 or a container port name`);
  }

  const adminPort = a[ANNOTATIONS.adminPort];
  if (adminPort !== undefined) {
    if (/^\d+$/.test(adminPort) && Number(adminPort) >= 1 && Number(adminPort) <= 65535) settings.adminPort = Number(adminPort);
    else problems.push(`${ANNOTATIONS.adminPort}: ${JSON.stringify(adminPort)} is not accepted; use a port number from 1 to 65535 that no container of the pod uses`);
  }

  const queue = a[ANNOTATIONS.queue];
  if (queue !== undefined) {
    if (isValidQueueName(queue)) settings.queue = queue;
    else problems.push(`${ANNOTATIONS.queue}: ${JSON.stringify(queue)} is not accepted; use letters, digits, ".", "_" or "-" (at most 200, starting with a letter or digit)`);
  }

  const backend = a[ANNOTATIONS.backend];
  if (backend !== undefined) {
    if (backend.includes('://') || backend.includes('@')) {
      problems.push(`${ANNOTATIONS.backend}: names the Secret that holds the broker settings; broker URLs and credentials never go in annotations`);
    } else if (DNS_LABEL.test(backend)) settings.backendSecret = backend;
    else problems.push(`${ANNOTATIONS.backend}: ${JSON.stringify(backend)} is not accepted; use the name of a Secret in the pod's namespace (a DNS label)`);
  }

  const concurrency = a[ANNOTATIONS.concurrency];
  if (concurrency !== undefined) {
    try {
      settings.concurrency = integerIn(1, 1000)(concurrency);
    } catch (err) {
      problems.push(`${ANNOTATIONS.concurrency}: ${(err as Error).message}`);
    }
  }

  const delivery = a[ANNOTATIONS.delivery];
  if (delivery !== undefined) {
    if ((KAFKA_DELIVERIES as readonly string[]).includes(delivery)) settings.delivery = delivery as KafkaDelivery;
    else problems.push(`${ANNOTATIONS.delivery}: ${JSON.stringify(delivery)} is not accepted; use ${KAFKA_DELIVERIES.join(', ')} (Kafka only)`);
  }

  const native = parseBoolean(a, ANNOTATIONS.nativeSidecar, problems);
  if (native !== undefined) settings.nativeSidecar = native;

  const quantities: Array<[string, keyof PodSettings['resources']]> = [
    [ANNOTATIONS.sidecarCpuRequest, 'cpuRequest'],
    [ANNOTATIONS.sidecarMemoryRequest, 'memoryRequest'],
    [ANNOTATIONS.sidecarCpuLimit, 'cpuLimit'],
    [ANNOTATIONS.sidecarMemoryLimit, 'memoryLimit'],
  ];
  for (const [key, field] of quantities) {
    const raw = a[key];
    if (raw === undefined) continue;
    if (QUANTITY.test(raw)) settings.resources[field] = raw;
    else problems.push(`${key}: ${JSON.stringify(raw)} is not accepted; use a Kubernetes quantity such as 100m, 0.5, 128Mi or 1Gi`);
  }

  // Annotations that belong to Services only are refused on pods rather than ignored.
  if (a[ANNOTATIONS.timeout] !== undefined) {
    problems.push(`${ANNOTATIONS.timeout}: set it on the Service, where the responder applies it; it has no effect on a pod`);
  }

  return problems.length ? { ok: false, problems } : { ok: true, value: settings };
}

export interface ServiceSettings {
  queue?: string;
  timeoutMs?: number;
}

export function parseServiceSettings(annotations: Annotations): Parsed<ServiceSettings> {
  const a = annotations ?? {};
  const problems: string[] = [];
  const settings: ServiceSettings = {};
  const queue = a[ANNOTATIONS.queue];
  if (queue !== undefined) {
    if (isValidQueueName(queue)) settings.queue = queue;
    else problems.push(`${ANNOTATIONS.queue}: ${JSON.stringify(queue)} is not accepted; use letters, digits, ".", "_" or "-" (at most 200, starting with a letter or digit)`);
  }
  const timeout = a[ANNOTATIONS.timeout];
  if (timeout !== undefined) {
    try {
      settings.timeoutMs = durationIn(100, 24 * 3_600_000)(timeout);
    } catch (err) {
      problems.push(`${ANNOTATIONS.timeout}: ${(err as Error).message}`);
    }
  }
  return problems.length ? { ok: false, problems } : { ok: true, value: settings };
}
