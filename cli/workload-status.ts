/**
 * What `kueuer status` shows for each opted-in workload, as pure functions
 * from the objects read (workload, its pods, its generated HPA, the queue's
 * backlog) to one table row. The reading is in cli/status.ts.
 */
import type { V1Deployment, V1LabelSelector, V1StatefulSet, V2HorizontalPodAutoscaler, V1Pod, V1PodTemplateSpec } from '@kubernetes/client-node';
import { ANNOTATIONS, optIn, parsePodSettings } from '../shared/annotations.js';
import { qualifiedQueueName } from '../shared/queue-names.js';
import { SIDECAR_NAME } from '../webhook/admission/pod-injection.js';

export interface Workload {
  kind: 'Deployment' | 'StatefulSet';
  namespace: string;
  name: string;
  template: V1PodTemplateSpec;
  replicas: number;
  readyReplicas: number;
}

/** An opted-in Service and why part of its traffic does not reach the responders (null: all of it does). */
export interface ServiceNote {
  service: string;
  problem: string | null;
  fix: string;
}

/** A queue's backlog, or why it is not known. */
export type Backlog = { value: number } | { unknown: string };

/** Something read from the API, or why it could not be (e.g. forbidden). */
export type Read<T> = T | { unknown: string };

const isUnknown = <T extends object>(read: Read<T> | undefined): read is { unknown: string } => read !== undefined && 'unknown' in read;

/**
 * A label selector as the API's labelSelector string: matchLabels and
 * matchExpressions (In, NotIn, Exists, DoesNotExist), so the pods listed are
 * exactly the workload's.
 */
export function selectorString(selector: V1LabelSelector | undefined): string {
  const labels = Object.entries(selector?.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`);
  const expressions = (selector?.matchExpressions ?? []).map(({ key, operator, values = [] }) => {
    switch (operator) {
      case 'In':
        return `${key} in (${values.join(',')})`;
      case 'NotIn':
        return `${key} notin (${values.join(',')})`;
      case 'Exists':
        return key;
      case 'DoesNotExist':
        return `!${key}`;
      default:
        throw new Error(`label selector operator ${JSON.stringify(operator)} on ${key} is not one of In, NotIn, Exists, DoesNotExist`);
    }
  });
  return [...labels, ...expressions].join(',');
}

export interface StatusRow {
  namespace: string;
  workload: string;
  queue: string;
  backlog: string;
  replicas: string;
  desired: string;
  injected: string;
  /** Why, for what is not as it should be (printed under the table). */
  notes: string[];
}

/** Whether the workload's pod template opts in (the label, or the deprecated annotation). */
export function optsIn(template: V1PodTemplateSpec): boolean {
  const wanted = optIn(template.metadata?.labels, template.metadata?.annotations);
  return wanted.ok && wanted.value.value;
}

/** The opted-in workloads among Deployments and StatefulSets read from the API, with their pods' selector. */
export function optedInWorkloads(deployments: readonly V1Deployment[], statefulSets: readonly V1StatefulSet[]): Array<Workload & { selector: string }> {
  const workloads: Array<Workload & { selector: string }> = [];
  for (const [kind, items] of [
    ['Deployment', deployments],
    ['StatefulSet', statefulSets],
  ] as const) {
    for (const item of items) {
      if (!item.spec || !optsIn(item.spec.template)) continue;
      workloads.push({
        kind,
        namespace: item.metadata!.namespace!,
        name: item.metadata!.name!,
        template: item.spec.template,
        replicas: item.spec.replicas ?? 1,
        readyReplicas: item.status?.readyReplicas ?? 0,
        selector: selectorString(item.spec.selector),
      });
    }
  }
  return workloads;
}

/** The queue the webhook names for the workload's pods: kueuer.io/queue, else the workload's name. */
export function workloadQueue(w: Workload): string {
  const settings = parsePodSettings(w.template.metadata?.annotations);
  return qualifiedQueueName(w.namespace, (settings.ok ? settings.value.queue : undefined) ?? w.name);
}

export function hasSidecar(pod: V1Pod): boolean {
  return [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])].some((c) => c.name === SIDECAR_NAME);
}

/**
 * One row. `hpa`: the autoscaler the webhook generated for the workload, if
 * any. Pods or HPA that could not be read show as unknown, with a note.
 */
export function statusRow(w: Workload, podsRead: Read<readonly V1Pod[]>, hpaRead: Read<V2HorizontalPodAutoscaler> | undefined, backlog: Backlog): StatusRow {
  const ref = `${w.kind.toLowerCase()}/${w.name}`;
  const notes: string[] = [];
  const settings = parsePodSettings(w.template.metadata?.annotations);
  if (!settings.ok) notes.push(`${ref}: the webhook refuses its pods: ${settings.problems.join('; ')}`);
  if ('unknown' in backlog) notes.push(`${ref}: backlog unknown: ${backlog.unknown}`);
  if (isUnknown(podsRead)) notes.push(`${ref}: pods unknown: ${podsRead.unknown}`);
  if (isUnknown(hpaRead)) notes.push(`${ref}: desired replicas unknown: ${hpaRead.unknown}`);
  const pods = isUnknown(podsRead) ? [] : podsRead;
  const hpa = isUnknown(hpaRead) ? undefined : hpaRead;
  const without = pods.filter((p) => !hasSidecar(p));
  if (without.length > 0) {
    const names = without.map((p) => p.metadata?.name ?? '?').join(', ');
    notes.push(
      `${ref}: ${without.length} pod(s) without the sidecar (${names}): created before the workload opted in or before the webhook ran; ` +
        `roll them: kubectl -n ${w.namespace} rollout restart ${ref}`,
    );
  }
  const versions = new Set(
    pods
      .filter(hasSidecar)
      .map((p) => {
        try {
          return (JSON.parse(p.metadata?.annotations?.[ANNOTATIONS.status] ?? '{}') as { version?: string }).version;
        } catch {
          return undefined;
        }
      })
      .filter((v): v is string => v !== undefined),
  );
  const desired = hpa?.status?.desiredReplicas;
  if (hpaRead === undefined) notes.push(`${ref}: no autoscaler generated (kueuer.io/autoscale "false", --autoscaling off or keda, or not reconciled yet)`);
  return {
    namespace: w.namespace,
    workload: ref,
    queue: workloadQueue(w),
    backlog: 'value' in backlog ? String(backlog.value) : 'unknown',
    replicas: `${w.readyReplicas}/${w.replicas}`,
    desired: isUnknown(hpaRead) ? 'unknown' : desired === undefined ? '-' : String(desired),
    injected: isUnknown(podsRead)
      ? 'unknown'
      : `${pods.length - without.length}/${pods.length}${versions.size > 0 ? ` (${[...versions].sort().join(', ')})` : ''}`,
    notes,
  };
}

/** The rows as an aligned table, then every note. */
export function formatStatus(rows: readonly StatusRow[], unreadable: readonly string[] = [], services: readonly ServiceNote[] = []): string {
  const bypassed = services.filter((s) => s.problem !== null);
  const serviceLines =
    bypassed.length > 0
      ? `\nServices whose traffic bypasses Kueuer:\n${bypassed.map((s) => `  service/${s.service}: ${s.problem}\n    fix: ${s.fix}`).join('\n')}\n`
      : '';
  const unreadableLines = `${serviceLines}${unreadable.length > 0 ? `\nNot read:\n${unreadable.map((n) => `  ${n}`).join('\n')}\n` : ''}`;
  if (rows.length === 0)
    return `No opted-in workloads (Deployments and StatefulSets whose pod template has the label kueuer.io/inject: "true" in a namespace labelled kueuer.io/injection=enabled).\n${unreadableLines}`;
  const header = ['NAMESPACE', 'WORKLOAD', 'QUEUE', 'BACKLOG', 'READY/REPLICAS', 'DESIRED', 'INJECTED'];
  const lines = alignedTable(
    header,
    rows.map((r) => [r.namespace, r.workload, r.queue, r.backlog, r.replicas, r.desired, r.injected]),
  );
  const notes = rows.flatMap((r) => r.notes);
  return `${lines.join('\n')}\n${notes.length > 0 ? `\n${notes.join('\n')}\n` : ''}${unreadableLines}`;
}

/** A header and rows as lines of columns two spaces apart, each as wide as its widest cell. */
export function alignedTable(header: readonly string[], rows: ReadonlyArray<readonly string[]>): string[] {
  const table = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
  return table.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  '));
}
