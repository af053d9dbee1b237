/**
 * docs/reference/annotations.md's tables: every `kueuer.io/` label and
 * annotation, per object it is read on, with its default taken from the code
 * (the option it overrides, the webhook's settings, the autoscaling defaults).
 * What each accepts is written here, once; test/unit/docs-reference.test.ts
 * checks the tables list exactly the keys the parsers in shared/annotations.ts
 * and webhook/autoscaling/settings.ts read on each kind of object.
 */
import { ANNOTATIONS, LABELS, NAMESPACE_LABEL, NAMESPACE_LABEL_VALUE, parsePodSettings, parseServiceSettings, PREFIX } from '../../shared/annotations.js';
import { concurrencyOption, kafkaOptions, timeoutOption } from '../../shared/common-options.js';
import { parseCallbackSettings } from '../../responder/callbacks/settings.js';
import { AUTOSCALING_DEFAULTS, parseAutoscalingSettings } from '../../webhook/autoscaling/settings.js';
import { defaultWebhookSettings, webhookOptions } from '../../webhook/config.js';
import { annotationTable, type AnnotationRow } from './docs-render.js';

const webhookDefault = (key: 'sidecarAdminPort' | 'backendSecret' | 'nativeSidecars') =>
  `the webhook's \`--${webhookOptions[key].flag}\` (\`${webhookOptions[key].defaultValue}\`)`;

export function podRows(): AnnotationRow[] {
  const s = defaultWebhookSettings();
  const resource = (key: string, what: string, value: string | undefined): AnnotationRow => ({
    key,
    default: value === undefined ? 'none' : `\`${value}\` (the webhook's \`--${key.slice(PREFIX.length)}\`)`,
    accepts: `the sidecar's ${what}: a Kubernetes quantity as kubectl takes it (\`128Mi\`, \`0.5\`, \`+1Gi\`, \`1e9\`), never negative`,
  });
  return [
    {
      key: ANNOTATIONS.appPort,
      default: "the first container's first port",
      accepts: 'a port number (1–65535) or a container port name',
    },
    {
      key: ANNOTATIONS.adminPort,
      default: webhookDefault('sidecarAdminPort'),
      accepts:
        "a port number (1–65535): the sidecar's `/metrics`, `/healthz`, `/readyz`, `/drain`. A pod where a container (or a native sidecar) declares this port, or whose app port is this port, is refused with a message naming the container and port; set this annotation to move the sidecar's port",
    },
    {
      key: ANNOTATIONS.queue,
      default:
        "the owning workload's name: a Deployment's pods, the Deployment; a StatefulSet's, the StatefulSet; a Job's, the Job's CronJob, else the Job's `generateName` prefix, else the Job (the webhook reads the Job, see below)",
      accepts:
        "letters, digits, `.`, `_`, `-` (at most 200, starting with a letter or digit); the namespace is always prefixed: `<namespace>.<queue>`; a name in the reply inboxes' `kueuer.reply.*` (in namespace `kueuer`, a queue starting `reply.`) is refused, and so is every queue of namespace `reply` (Kafka would name its topic `kueuer.reply.*`)",
    },
    {
      key: ANNOTATIONS.backend,
      default: webhookDefault('backendSecret'),
      accepts:
        "up to 4 comma-separated names of Secrets in the pod's namespace (a URL or credentials are refused): the first holds `KUEUER_BACKEND` or is an operator's Secret as it is (the RabbitMQ Cluster Operator's `<cluster>-default-user`, [RabbitMQ](../rabbitmq.md)); the others (Strimzi's KafkaUser and cluster CA Secrets, [Kafka](../kafka.md#strimzis-secrets-as-they-are)) are mounted at `/etc/kueuer/broker/<name>`",
    },
    {
      key: ANNOTATIONS.concurrency,
      default: `\`${concurrencyOption().defaultValue}\``,
      accepts: '1–1000: requests handed to one pod at once',
    },
    {
      key: ANNOTATIONS.delivery,
      default: `\`${kafkaOptions().delivery.defaultValue}\` (or the Secret's \`${kafkaOptions().delivery.env}\`)`,
      accepts: 'Kafka only: `at-least-once`, `at-most-once` or `transactional` ([CLI: Kafka](cli.md#kafka))',
    },
    {
      key: ANNOTATIONS.queueType,
      default: `\`${kafkaOptions().rabbitmqQueueType.defaultValue}\` (or the Secret's \`${kafkaOptions().rabbitmqQueueType.env}\`)`,
      accepts: 'RabbitMQ only: `quorum` or `classic`, the type of the request queue the sidecar declares ([CLI: RabbitMQ](cli.md#rabbitmq))',
    },
    {
      key: ANNOTATIONS.nativeSidecar,
      default: webhookDefault('nativeSidecars'),
      accepts: '`"true"` (init container with `restartPolicy: Always`) or `"false"` (regular container)',
    },
    resource(ANNOTATIONS.sidecarCpuRequest, 'CPU request', s.sidecarCpuRequest),
    resource(ANNOTATIONS.sidecarMemoryRequest, 'memory request', s.sidecarMemoryRequest),
    resource(ANNOTATIONS.sidecarCpuLimit, 'CPU limit', undefined),
    resource(ANNOTATIONS.sidecarMemoryLimit, 'memory limit', s.sidecarMemoryLimit),
  ];
}

export function serviceRows(): AnnotationRow[] {
  return [
    {
      key: ANNOTATIONS.queue,
      default: "the Service's name",
      accepts: 'as for pods; set it on both when the Service and the workload are named differently',
    },
    {
      key: ANNOTATIONS.timeout,
      default: `the responder's \`--${timeoutOption().flag}\` (\`${timeoutOption().defaultValue}\`)`,
      accepts: "a duration (`30s`, `5m`): the deadline of this Service's requests",
    },
    {
      key: ANNOTATIONS.async,
      default: '`off`',
      accepts:
        '`off`, `on-request` (a request with `Prefer: respond-async` gets `202` and a `Location` under `/.kueuer/requests/`) or `always` (every request); with it on, the path prefix `/.kueuer/` of this Service belongs to Kueuer ([async requests](../async.md))',
    },
    {
      key: ANNOTATIONS.asyncResultTtl,
      default: '`24h`',
      accepts: 'a duration from `1s` to `30d`: how long an asynchronous request and its result are kept',
    },
    {
      key: ANNOTATIONS.asyncCallbackAllow,
      default: 'none: no callback destination is allowed',
      accepts:
        'read by the responder: comma-separated `https://host[:port]`, `http://host[:port]` or `https://*.domain[:port]` that async callbacks (`Kueuer-Callback-Url`) may go to; needs `kueuer.io/async-callback-secret` ([async callbacks](../async-callbacks.md))',
    },
    {
      key: ANNOTATIONS.asyncCallbackSecret,
      default: 'none',
      accepts:
        "read by the responder: `name[/key]` of a Secret in the Service's namespace holding the key that signs callbacks (default key `key`, at least 24 bytes)",
    },
  ];
}

export function workloadRows(): AnnotationRow[] {
  const d = AUTOSCALING_DEFAULTS;
  return [
    { key: ANNOTATIONS.autoscale, default: `\`"${d.enabled}"\``, accepts: '`"false"`: no autoscaler for this workload' },
    { key: ANNOTATIONS.minReplicas, default: `\`${d.minReplicas}\``, accepts: '0–10000; `0` turns on scale to zero; at most `kueuer.io/max-replicas`' },
    { key: ANNOTATIONS.maxReplicas, default: `\`${d.maxReplicas}\``, accepts: "1–10000; on Kafka capped at the request topic's partition count" },
    { key: ANNOTATIONS.targetBacklog, default: `\`${d.targetBacklog}\``, accepts: 'queued requests per replica the HPA aims for (`AverageValue`), 1–1000000' },
    {
      key: ANNOTATIONS.scaleDownStabilization,
      default: `\`${d.scaleDownStabilizationSeconds}s\``,
      accepts: "duration up to `1h`: the HPA's scale-down stabilization window",
    },
    {
      key: ANNOTATIONS.idleCooldown,
      default: `\`${d.idleCooldownSeconds}s\``,
      accepts: 'duration up to `24h`; with min 0: how long the backlog stays at 0 before scaling to 0',
    },
  ];
}

/** What Kueuer writes: never set these yourself. */
export function writtenRows(): Array<{ key: string; on: string; holds: string }> {
  return [
    { key: ANNOTATIONS.status, on: 'injected pods', holds: 'what was injected, in which version and mode' },
    {
      key: ANNOTATIONS.originalService,
      on: 'queued Services',
      holds: "the Service's own selector and target ports, restored when the label is removed (and by `scripts/uninstall.sh`)",
    },
    { key: ANNOTATIONS.responderPort, on: 'queued Services', holds: 'the responder port (20000–29999) the webhook allocated to the Service' },
  ];
}

export function labelRows(): Array<{ key: string; on: string; accepts: string }> {
  return [
    { key: NAMESPACE_LABEL, on: 'namespace', accepts: `\`${NAMESPACE_LABEL_VALUE}\`: the webhook is sent the namespace's opted-in pods and Services` },
    {
      key: LABELS.inject,
      on: 'pod template, Service',
      accepts:
        '`"true"` injects the sidecar / points the Service at the responder; `"false"` or absent leaves the object alone; removing it from a Service restores the Service; any other value is refused',
    },
  ];
}

/** docs/reference/annotations.md's generated regions. */
export function annotationBodies(): Record<string, string> {
  return {
    labels: ['| label | on | accepted values |', '|---|---|---|', ...labelRows().map((r) => `| \`${r.key}\` | ${r.on} | ${r.accepts} |`)].join('\n'),
    'annotations pod': annotationTable(podRows()),
    'annotations service': annotationTable(serviceRows()),
    'annotations workload': annotationTable(workloadRows()),
    'annotations written': [
      '| annotation | written on | holds |',
      '|---|---|---|',
      ...writtenRows().map((r) => `| \`${r.key}\` | ${r.on} | ${r.holds} |`),
    ].join('\n'),
  };
}

/** The annotations a parser reads: those whose unacceptable value it refuses by name (a Service-only one refused on a pod is not read there). */
export function keysRead(parse: (a: Record<string, string>) => { ok: boolean; problems?: string[] }): string[] {
  return Object.values(ANNOTATIONS)
    .filter((key) => {
      const r = parse({ [key]: '\u0000 not a value' });
      return !r.ok && r.problems!.some((p) => p.startsWith(`${key}:`) && !p.includes('set it on the Service'));
    })
    .sort();
}

/** A parser's answer in keysRead's shape. */
function toProblems(r: { ok: boolean; problems?: readonly string[]; problem?: string }): { ok: boolean; problems?: string[] } {
  return r.ok ? { ok: true } : { ok: false, problems: [...(r.problems ?? []), ...(r.problem ? [r.problem] : [])] };
}

/** Per table, the annotations the webhook reads on that kind of object and the rows the table has: equal when the docs are complete. */
export function annotationCoverage(): Array<{ table: string; read: string[]; documented: string[] }> {
  const keys = (rows: AnnotationRow[]) => rows.map((r) => r.key).sort();
  return [
    { table: 'pod', read: keysRead(parsePodSettings), documented: keys(podRows()) },
    {
      table: 'service',
      read: [...keysRead(parseServiceSettings), ...keysRead((a) => toProblems(parseCallbackSettings(a)))].sort(),
      documented: keys(serviceRows()),
    },
    { table: 'workload', read: keysRead((a) => parseAutoscalingSettings(a, undefined)), documented: keys(workloadRows()) },
  ];
}
