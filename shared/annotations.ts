/**
 * The `kueuer.io/` annotation and label keys, and the validation of their
 * values. Pure: every function takes an object's annotations and returns
 * either settings or the list of problems, each naming the annotation and
 * what it accepts. A typo refuses the object; it is never silently ignored.
 */
import { concurrencyOption, kafkaOptions, timeoutOption } from './common-options.js';
import { defined } from './defined.js';
import { isValidQueueName } from './envelope.js';
import { dnsLabel, durationIn, oneOf, portNumber } from './options.js';
import { parseQuantity } from './quantity.js';
import { KAFKA_DELIVERIES, RABBITMQ_QUEUE_TYPES, type KafkaDelivery, type RabbitMqQueueType } from '../shared/transport/backend.js';

export const PREFIX = 'kueuer.io/';
export const ANNOTATIONS = {
  inject: `${PREFIX}inject`,
  appPort: `${PREFIX}app-port`,
  adminPort: `${PREFIX}admin-port`,
  queue: `${PREFIX}queue`,
  backend: `${PREFIX}backend`,
  concurrency: `${PREFIX}concurrency`,
  delivery: `${PREFIX}delivery`,
  queueType: `${PREFIX}queue-type`,
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
  /** Services: where async callbacks may go (responder/callbacks/allow-list.ts has the grammar). */
  asyncCallbackAllow: `${PREFIX}async-callback-allow`,
  /** Services: the Secret (`name[/key]`) holding the key that signs async callbacks. */
  asyncCallbackSecret: `${PREFIX}async-callback-secret`,
  /** On Services: whether the responder answers requests asynchronously (docs/async.md). */
  async: `${PREFIX}async`,
  /** On Services: how long the responder keeps an asynchronous request's result. */
  asyncResultTtl: `${PREFIX}async-result-ttl`,
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
  /** RabbitMQ only: the type of the request queue the sidecar declares. */
  queueType?: RabbitMqQueueType;
  nativeSidecar?: boolean;
  resources: { cpuRequest?: string; memoryRequest?: string; cpuLimit?: string; memoryLimit?: string };
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; problems: string[] };

const PORT_NAME = /^[a-z0-9]([-a-z0-9]{0,13}[a-z0-9])?$/;

function parseTrueFalse(raw: string): boolean {
  if (raw === 'true') return true;
  if (raw === 'false') return false;
  throw new Error('use "true" or "false"');
}

/**
 * Label and annotation values are strings; a manifest read by a YAML parser
 * (kueuer inject) can carry `true` or `4` unquoted, which kubectl would refuse
 * too. The problem then says to quote it rather than that the value is wrong.
 */
function notAString(key: string, raw: unknown): string | undefined {
  if (typeof raw === 'string') return undefined;
  const shown = JSON.stringify(raw) ?? String(raw);
  return `${key}: the YAML ${raw === null ? 'null' : typeof raw} ${shown} is not a string; quote it: ${key}: ${JSON.stringify(shown)}`;
}

/** `"true"` or `"false"`; anything else (yes, True, 1, an unquoted YAML true) is refused. */
export function parseBoolean(annotations: Annotations, key: string, problems: string[]): boolean | undefined {
  const raw = annotations?.[key];
  if (raw === undefined) return undefined;
  const unquoted = notAString(key, raw);
  if (unquoted) {
    problems.push(unquoted);
    return undefined;
  }
  try {
    return parseTrueFalse(raw);
  } catch (err) {
    problems.push(`${key}: ${JSON.stringify(raw)} is not accepted; ${(err as Error).message}`);
    return undefined;
  }
}

/**
 * The opt-in label: `kueuer.io/inject: "true"` on a pod (template) or a
 * Service. A label, so the webhook configuration's objectSelector sends the
 * webhook only opted-in objects and an outage blocks only those.
 */
export const LABELS = {
  inject: `${PREFIX}inject`,
} as const;

export type Labels = Record<string, string> | undefined;

export interface OptIn {
  /** Whether the object asks for Kueuer. */
  value: boolean;
  /** Set when the deprecated annotation decided it: names the label to add instead. */
  deprecation?: string;
}

/**
 * Whether the object asks for Kueuer: the label `kueuer.io/inject: "true"`,
 * or (deprecated) the annotation of the same key when the label is absent.
 * An object carrying both is decided by the label; if the two disagree the
 * object is refused rather than guessed about.
 */
export function optIn(labels: Labels, annotations: Annotations): Parsed<OptIn> {
  const problems: string[] = [];
  const label = parseBoolean(labels, LABELS.inject, problems);
  if (problems.length) problems[0] = `label ${problems[0]}`;
  const annotation = parseBoolean(annotations, ANNOTATIONS.inject, problems);
  if (problems.length) return { ok: false, problems };
  if (label !== undefined) {
    if (annotation !== undefined && annotation !== label) {
      return {
        ok: false,
        problems: [`${LABELS.inject}: the label says "${label}" and the deprecated annotation says "${annotation}"; remove the annotation`],
      };
    }
    return { ok: true, value: { value: label } };
  }
  if (annotation === true) {
    return { ok: true, value: { value: true, deprecation: deprecationWarning() } };
  }
  return { ok: true, value: { value: false } };
}

/** The warning an object opted in by the annotation alone gets: which label to add. */
export function deprecationWarning(): string {
  return (
    `kueuer: the ${ANNOTATIONS.inject} annotation is deprecated: add the label ${LABELS.inject}: "true" ` +
    `(kubectl label, or the pod template's metadata.labels) and remove the annotation; ` +
    `the webhook configuration's objectSelector sends the webhook only objects with the label`
  );
}

/** Whether the object asks for Kueuer (see optIn); `labels` may be omitted to read the deprecated annotation alone. */
export function wantsInjection(annotations: Annotations, labels?: Labels): Parsed<boolean> {
  const parsed = optIn(labels, annotations);
  return parsed.ok ? { ok: true, value: parsed.value.value } : parsed;
}

/**
 * How one annotation is read: the option parser of the same setting, and what
 * a refusal says (`use …`), or nothing to pass the parser's own message on.
 */
interface AnnotationRule<T> {
  parse: (raw: string) => T;
  use?: string;
}

function rule<T>(parse: (raw: string) => T, use?: string): AnnotationRule<T> {
  return use === undefined ? { parse } : { parse, use };
}

// The name grammar only: the qualified name (<namespace>.<queue>) is checked against the reply namespace at admission.
const QUEUE_RULE = rule((raw) => {
  if (!isValidQueueName(raw)) throw new Error('not a queue name');
  return raw;
}, 'use letters, digits, ".", "_" or "-" (at most 200, starting with a letter or digit)');
// The parser's message says what is wrong (not a quantity, negative, too large) and what to use.
const QUANTITY_RULE = rule(parseQuantity);

/** kueuer.io/backend: the broker Secret and up to three more it needs (a user Secret, a CA Secret). */
export const MAX_BROKER_SECRETS = 4;

/** The pod annotations, each read through the parser of the option it sets. */
const POD_RULES = {
  appPort: rule((raw): number | string => {
    if (/[a-z]/.test(raw) && PORT_NAME.test(raw)) return raw;
    return portNumber(raw);
  }, 'use a port number from 1 to 65535 or a container port name'),
  adminPort: rule(portNumber, 'use a port number from 1 to 65535 that no container of the pod uses'),
  queue: QUEUE_RULE,
  backend: rule((raw) => {
    // The message is the problem itself: a URL or credentials in an annotation.
    if (raw.includes('://') || raw.includes('@'))
      throw new Error('names the Secret that holds the broker settings; broker URLs and credentials never go in annotations');
    // One Secret, or several (the broker Secret, then e.g. Strimzi's KafkaUser and cluster CA Secrets, mounted: docs/kafka.md).
    const names = raw.split(',');
    if (/\s/.test(raw)) throw new Error(`${JSON.stringify(raw)} has a space: separate the Secret names by commas only (a,b,c)`);
    try {
      names.forEach((n) => dnsLabel('a Secret name')(n));
    } catch {
      throw new Error(`${JSON.stringify(raw)} is not accepted; use the name of a Secret in the pod's namespace (a DNS label), or several separated by commas`);
    }
    const twice = names.find((n, i) => names.indexOf(n) !== i);
    if (twice) throw new Error(`names the Secret ${twice} twice`);
    if (names.length > MAX_BROKER_SECRETS) throw new Error(`names ${names.length} Secrets; at most ${MAX_BROKER_SECRETS} Secrets`);
    return raw;
  }),
  concurrency: rule(concurrencyOption().parse),
  delivery: rule(kafkaOptions().delivery.parse, `use ${KAFKA_DELIVERIES.join(', ')} (Kafka only)`),
  queueType: rule(kafkaOptions().rabbitmqQueueType.parse, `use ${RABBITMQ_QUEUE_TYPES.join(' or ')} (RabbitMQ only)`),
  nativeSidecar: rule(parseTrueFalse, 'use "true" or "false"'),
  sidecarCpuRequest: QUANTITY_RULE,
  sidecarMemoryRequest: QUANTITY_RULE,
  sidecarCpuLimit: QUANTITY_RULE,
  sidecarMemoryLimit: QUANTITY_RULE,
} satisfies Partial<Record<keyof typeof ANNOTATIONS, AnnotationRule<unknown>>>;

/** kueuer.io/async: off (default), on-request (RFC 7240 `Prefer: respond-async`), always. */
export const ASYNC_MODES = ['off', 'on-request', 'always'] as const;
export type AsyncMode = (typeof ASYNC_MODES)[number];

const SERVICE_RULES = {
  queue: QUEUE_RULE,
  timeout: rule(timeoutOption().parse),
  async: rule(oneOf(ASYNC_MODES), `use ${ASYNC_MODES.join(', ')}`),
  // From 1 s to 30 days; the parser's message says which bound was crossed.
  asyncResultTtl: rule(durationIn(1_000, 30 * 24 * 3_600_000)),
} satisfies Partial<Record<keyof typeof ANNOTATIONS, AnnotationRule<unknown>>>;

type RuleValues<R> = { [K in keyof R]?: R[K] extends AnnotationRule<infer T> ? T : never };

/** Reads every annotation the rules name, collecting one problem per refused value. */
function readAnnotations<R extends Partial<Record<keyof typeof ANNOTATIONS, AnnotationRule<unknown>>>>(
  a: Record<string, string>,
  rules: R,
  problems: string[],
): RuleValues<R> {
  const out: Record<string, unknown> = {};
  for (const [name, r] of Object.entries(rules) as Array<[keyof typeof ANNOTATIONS, AnnotationRule<unknown>]>) {
    const key = ANNOTATIONS[name];
    const raw = a[key];
    if (raw === undefined) continue;
    const unquoted = notAString(key, raw);
    if (unquoted) {
      problems.push(unquoted);
      continue;
    }
    try {
      out[name] = r.parse(raw);
    } catch (err) {
      problems.push(r.use === undefined ? `${key}: ${(err as Error).message}` : `${key}: ${JSON.stringify(raw)} is not accepted; ${r.use}`);
    }
  }
  return out as RuleValues<R>;
}

export function parsePodSettings(annotations: Annotations): Parsed<PodSettings> {
  const a = annotations ?? {};
  const problems: string[] = [];
  const v = readAnnotations(a, POD_RULES, problems);
  const resources = { cpuRequest: v.sidecarCpuRequest, memoryRequest: v.sidecarMemoryRequest, cpuLimit: v.sidecarCpuLimit, memoryLimit: v.sidecarMemoryLimit };
  const settings: PodSettings = {
    ...defined({
      appPort: v.appPort,
      adminPort: v.adminPort,
      queue: v.queue,
      backendSecret: v.backend,
      concurrency: v.concurrency,
      delivery: v.delivery,
      queueType: v.queueType,
      nativeSidecar: v.nativeSidecar,
    }),
    resources: defined(resources),
  };

  // Annotations that belong to Services only are refused on pods rather than ignored.
  for (const key of [ANNOTATIONS.timeout, ANNOTATIONS.async, ANNOTATIONS.asyncResultTtl]) {
    if (a[key] !== undefined) problems.push(`${key}: set it on the Service, where the responder applies it; it has no effect on a pod`);
  }

  return problems.length ? { ok: false, problems } : { ok: true, value: settings };
}

export interface ServiceSettings {
  queue?: string;
  timeoutMs?: number;
  asyncMode?: AsyncMode;
  asyncResultTtlMs?: number;
}

export function parseServiceSettings(annotations: Annotations): Parsed<ServiceSettings> {
  const problems: string[] = [];
  const v = readAnnotations(annotations ?? {}, SERVICE_RULES, problems);
  const settings: ServiceSettings = defined({ queue: v.queue, timeoutMs: v.timeout, asyncMode: v.async, asyncResultTtlMs: v.asyncResultTtl });
  return problems.length ? { ok: false, problems } : { ok: true, value: settings };
}
