/**
 * What `kueuer inject` tells the user about a manifest that injects cleanly
 * but would not work as meant in the cluster: nothing opted in (or the label
 * on the workload instead of its pod template), an unknown `kueuer.io/` key,
 * a Service whose queue no pod of the manifest consumes, an app port guessed
 * among several containers' ports, an opt-in by the annotation alone (which
 * the webhook configuration's objectSelector never sends to the webhook).
 * Pure: manifest objects in (as read and as injected), warning lines out.
 */
import { ANNOTATIONS, LABELS, NAMESPACE_LABEL, PREFIX } from '../shared/annotations.js';
import { closestName } from '../shared/options.js';
import { serviceQueue } from '../shared/queue-names.js';

interface Meta {
  name?: string;
  namespace?: string;
  labels?: Record<string, unknown>;
  annotations?: Record<string, unknown>;
}
interface Container {
  name?: string;
  ports?: Array<{ containerPort?: number }>;
}
interface Template {
  metadata?: Meta;
  spec?: { containers?: Container[] };
}
interface Obj {
  kind?: string;
  metadata?: Meta;
  spec?: { selector?: unknown; template?: Template; jobTemplate?: { spec?: { template?: Template } }; containers?: Container[] };
  items?: unknown;
}

/** One object of the manifest, read and injected, with how it is named in messages. */
export interface AdviceInput {
  what: string;
  before: unknown;
  after: unknown;
}

const KNOWN = [...Object.values(ANNOTATIONS), ...Object.values(LABELS), NAMESPACE_LABEL].map((k) => k.slice(PREFIX.length));
const WORKLOADS = new Set(['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'ReplicationController', 'Job', 'CronJob']);

/** The pod template of a workload, or the Pod itself (its metadata and spec). */
function podTemplate(o: Obj): Template | undefined {
  if (o.kind === 'Pod') return { metadata: o.metadata, spec: o.spec };
  return o.spec?.template ?? o.spec?.jobTemplate?.spec?.template;
}

function flatten(entries: AdviceInput[]): AdviceInput[] {
  return entries.flatMap((e) => {
    const b = e.before as Obj | null;
    const a = e.after as Obj | null;
    if (b?.kind === 'List' && Array.isArray(b.items)) {
      const afterItems: unknown[] = Array.isArray(a?.items) ? (a.items as unknown[]) : [];
      const items = b.items as unknown[];
      return flatten(items.map((item, i) => ({ what: `${e.what} items[${i}]`, before: item, after: afterItems[i] })));
    }
    return [e];
  });
}

const isTrue = (m: Record<string, unknown> | undefined, key: string): boolean => m?.[key] === 'true';

function unknownKeys(what: string, where: string, m: Record<string, unknown> | undefined): string[] {
  return Object.keys(m ?? {})
    .filter((k) => k.startsWith(PREFIX) && !KNOWN.includes(k.slice(PREFIX.length)))
    .map((k) => {
      const meant = closestName(k.slice(PREFIX.length), KNOWN);
      return `${what}: ${where} ${k} is not a Kueuer key and is ignored${meant ? `; did you mean ${PREFIX}${meant}?` : ''}`;
    });
}

/** The queue an injected pod template consumes, from the status annotation the webhook writes. */
function injectedQueue(after: unknown): string | undefined {
  const raw = podTemplate(after ?? {})?.metadata?.annotations?.[ANNOTATIONS.status];
  if (typeof raw !== 'string') return undefined;
  try {
    const queue = (JSON.parse(raw) as { queue?: unknown }).queue;
    return typeof queue === 'string' ? queue : undefined;
  } catch {
    return undefined;
  }
}

function selects(selector: unknown, labels: Record<string, unknown> | undefined): boolean {
  if (typeof selector !== 'object' || selector === null || Object.keys(selector).length === 0) return false;
  return Object.entries(selector).every(([k, v]) => labels?.[k] === v);
}

function appPortGuess(what: string, t: Template): string[] {
  if (t.metadata?.annotations?.[ANNOTATIONS.appPort] !== undefined) return [];
  const withPorts = (t.spec?.containers ?? []).filter((c) => (c.ports ?? []).length > 0);
  const first = t.spec?.containers?.[0];
  const port = first?.ports?.[0]?.containerPort;
  if (withPorts.length < 2 || port === undefined) return [];
  const others = withPorts.filter((c) => c !== first).map((c) => c.name ?? '?');
  return [
    `${what}: the app port ${port} is the first container's (${first?.name ?? '?'}) first port, guessed among containers that declare ports (also ${others.join(', ')}); ` +
      `pin it with the annotation ${ANNOTATIONS.appPort} on the pod template (a number or a container port name)`,
  ];
}

/** The warnings for a manifest: one line each, without the `kueuer inject: warning: ` prefix. */
export function manifestAdvice(entries: AdviceInput[], source: string, namespace: string): string[] {
  const objects = flatten(entries);
  const out: string[] = [];
  let optedIn = false;
  const services: Array<{ what: string; ns: string; queue: string; selector: unknown }> = [];
  const pods: Array<{ what: string; ns: string; queue: string; labels: Record<string, unknown> | undefined }> = [];
  for (const { what, before, after } of objects) {
    const o = (before ?? {}) as Obj;
    const ns = o.metadata?.namespace ?? namespace;
    out.push(...unknownKeys(what, 'label', o.metadata?.labels), ...unknownKeys(what, 'annotation', o.metadata?.annotations));
    const t = o.kind === 'Service' ? undefined : podTemplate(o);
    const m = o.kind === 'Service' ? o.metadata : t?.metadata;
    if (t && o.kind !== 'Pod') {
      out.push(...unknownKeys(what, 'pod template label', t.metadata?.labels), ...unknownKeys(what, 'pod template annotation', t.metadata?.annotations));
    }
    if (o.kind !== 'Service' && !t) continue;
    const byLabel = isTrue(m?.labels, LABELS.inject);
    const byAnnotation = !(m?.labels && LABELS.inject in m.labels) && isTrue(m?.annotations, ANNOTATIONS.inject);
    if (WORKLOADS.has(o.kind ?? '') && !byLabel && isTrue(o.metadata?.labels, LABELS.inject)) {
      out.push(
        `${what}: the label ${LABELS.inject}: "true" is on the ${o.kind}'s own metadata, which the webhook never reads: ` +
          `put it on the pod template (${o.kind === 'CronJob' ? 'spec.jobTemplate.spec.template' : 'spec.template'}.metadata.labels)`,
      );
    }
    if (byAnnotation) {
      out.push(
        `${what}: opted in by the annotation ${ANNOTATIONS.inject} alone, which the cluster's webhook never sees (its objectSelector matches the label): ` +
          (o.kind === 'Service'
            ? 'the Service would not be rewritten and its traffic would not reach Kueuer'
            : 'it is injected here, but the webhook would not inject its pods') +
          `; add the label ${LABELS.inject}: "true"`,
      );
    }
    if (!byLabel && !byAnnotation) continue;
    optedIn = true;
    if (o.kind === 'Service') {
      const explicit = o.metadata?.annotations?.[ANNOTATIONS.queue];
      services.push({
        what,
        ns,
        queue: serviceQueue(ns, o.metadata?.name ?? '', typeof explicit === 'string' ? explicit : undefined),
        selector: (o.spec as { selector?: unknown })?.selector,
      });
      continue;
    }
    if (t) out.push(...appPortGuess(what, t));
    const queue = injectedQueue(after);
    if (queue) pods.push({ what, ns, queue, labels: t?.metadata?.labels });
  }
  for (const s of services) {
    for (const p of pods.filter((p) => p.ns === s.ns && selects(s.selector, p.labels) && p.queue !== s.queue)) {
      out.push(
        `${s.what} queues its requests on ${s.queue}, but the pods it selects (${p.what}) take theirs from ${p.queue}: every request would wait for its timeout (504); ` +
          `give both the same ${ANNOTATIONS.queue} (the queue's name without the namespace)`,
      );
    }
  }
  if (!optedIn) {
    out.push(
      `nothing in ${source} is opted in, so nothing was injected: add the label ${LABELS.inject}: "true" to a pod template (spec.template.metadata.labels) and to its Service's metadata.labels`,
    );
  }
  return out;
}
