/**
 * `kueuer inject`'s core: the objects of a manifest as the webhook would
 * admit their pods. Every pod template (Deployment, StatefulSet, DaemonSet,
 * ReplicaSet, ReplicationController, Job, CronJob) and every bare Pod goes
 * through `mutate()` itself, as the pod its controller would create (with the
 * owner reference and labels that name its default queue), and the patch is
 * applied to the template. Services and every other kind are returned
 * untouched: the webhook rewrites a Service when it is created, against the
 * responder ports other Services hold, which only the cluster knows.
 */
import { createHmac } from 'node:crypto';
import type { V1ObjectMeta, V1OwnerReference, V1Pod, V1PodTemplateSpec } from '@kubernetes/client-node';
import jsonpatch, { type Operation } from 'fast-json-patch';
import type { Logger } from 'pino';
import type { AdmissionResponse } from './admission-review.js';
import { mutate } from './mutate.js';
import type { InjectionConfig } from './pod-injection.js';
import { JobWorkloads } from './workload-queue.js';

/** What of a manifest object is read: where a pod template can be. */
interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: V1ObjectMeta;
  spec?: { template?: V1PodTemplateSpec; jobTemplate?: { spec?: { template?: V1PodTemplateSpec } } };
  items?: unknown;
}

/** One manifest object's outcome: what to print, and what to tell the user. */
export interface InjectedObject {
  object: unknown;
  /** Warnings the webhook would return to kubectl (deprecated opt-in, not injected and why). */
  warnings: string[];
  /** The webhook would refuse the object's pods: the message, naming the annotation and the fix. */
  refusal?: string;
}

/** A fixed hash for the ReplicaSet a Deployment would create: only its shape matters (it names the queue after the Deployment). */
const TEMPLATE_HASH = 'kueuerinject';
const FAKE_UID = '00000000-0000-4000-8000-000000000000';

/** Where a kind keeps its pod template, and the owner its pods get. */
function podTemplateOf(o: KubeObject): { template: V1PodTemplateSpec; owner: V1OwnerReference; labels?: Record<string, string> } | undefined {
  const name = (o.metadata?.name ?? o.metadata?.generateName ?? o.kind ?? 'workload').replace(/-+$/, '');
  const owner = (kind: string, apiVersion: string, ownerName = name): V1OwnerReference => ({
    apiVersion,
    kind,
    name: ownerName,
    uid: FAKE_UID,
    controller: true,
  });
  switch (o.kind) {
    case 'Deployment':
      return (
        o.spec?.template && {
          template: o.spec.template,
          owner: owner('ReplicaSet', 'apps/v1', `${name}-${TEMPLATE_HASH}`),
          labels: { 'pod-template-hash': TEMPLATE_HASH },
        }
      );
    case 'StatefulSet':
    case 'DaemonSet':
    case 'ReplicaSet':
      return o.spec?.template && { template: o.spec.template, owner: owner(o.kind, 'apps/v1') };
    case 'ReplicationController':
      return o.spec?.template && { template: o.spec.template, owner: owner(o.kind, 'v1') };
    case 'Job':
      return o.spec?.template && { template: o.spec.template, owner: owner('Job', 'batch/v1') };
    case 'CronJob':
      return o.spec?.jobTemplate?.spec?.template && { template: o.spec.jobTemplate.spec.template, owner: owner('Job', 'batch/v1', `${name}-0`) };
    default:
      return undefined;
  }
}

/** The Job a Job-owned pod's queue is named from: the manifest's Job, or a run of the manifest's CronJob. */
function jobMetadataOf(o: KubeObject): V1ObjectMeta {
  if (o.kind === 'CronJob') {
    const cron = o.metadata?.name ?? 'cronjob';
    return { name: `${cron}-0`, uid: FAKE_UID, ownerReferences: [{ apiVersion: 'batch/v1', kind: 'CronJob', name: cron, uid: FAKE_UID, controller: true }] };
  }
  return { ...o.metadata, uid: FAKE_UID };
}

function decodePatch(response: AdmissionResponse): Operation[] {
  return response.patch ? (JSON.parse(Buffer.from(response.patch, 'base64').toString('utf8')) as Operation[]) : [];
}

/**
 * The drain token `kueuer inject` writes into a pod template: derived from the pod as its
 * controller would create it (namespace, owner, labels and the input template itself), not random,
 * so the same manifest renders byte-identical output (no GitOps diff on every render). A workload's
 * token changes only when its pod template does, which rolls its pods anyway; scaling it does not.
 * Same length and alphabet as the webhook's random token (192 bits, base64url). Anyone who reads
 * the manifest can read the token in the output just as well; the webhook, for pods it injects
 * itself, still draws a random token per pod.
 */
export function templateDrainToken(pod: V1Pod): string {
  return createHmac('sha256', 'kueuer-inject-drain-token/v1').update(JSON.stringify(pod)).digest().subarray(0, 24).toString('base64url');
}

/** Runs one pod through the webhook's pipeline; returns the admitted pod, or the refusal. */
async function admitPod(
  pod: V1Pod,
  namespace: string,
  config: InjectionConfig,
  jobs: JobWorkloads,
  log: Logger,
): Promise<{ pod: V1Pod; warnings: string[] } | { refusal: string }> {
  const request = { uid: 'kueuer-inject', kind: { group: '', version: 'v1', kind: 'Pod' }, namespace, operation: 'CREATE', object: pod };
  const derived = { ...config, newDrainToken: config.newDrainToken ?? (() => templateDrainToken(pod)) };
  const { response } = await mutate(request, derived, { usedPorts: () => new Set() }, jobs, log);
  if (!response.allowed) return { refusal: response.status?.message ?? 'refused' };
  const admitted = jsonpatch.applyPatch(structuredClone(pod), decodePatch(response), true, false).newDocument;
  return { pod: admitted, warnings: response.warnings ?? [] };
}

/** One object of the manifest, as the webhook would admit its pods. `namespace`: for objects that name none. */
export async function injectObject(o: unknown, namespace: string, config: InjectionConfig, log: Logger): Promise<InjectedObject> {
  if (typeof o !== 'object' || o === null || Array.isArray(o)) return { object: o, warnings: [] };
  const obj = o as KubeObject;
  if (obj.kind === 'List' && Array.isArray(obj.items)) {
    const items = await Promise.all(obj.items.map((item) => injectObject(item, namespace, config, log)));
    const refusal = items.find((i) => i.refusal)?.refusal;
    return { object: { ...obj, items: items.map((i) => i.object) }, warnings: items.flatMap((i) => i.warnings), ...(refusal ? { refusal } : {}) };
  }
  const ns = obj.metadata?.namespace ?? namespace;
  const jobs = new JobWorkloads(() => Promise.resolve(jobMetadataOf(obj)));
  if (obj.kind === 'Pod' && (obj.apiVersion ?? 'v1') === 'v1') {
    const result = await admitPod(o, ns, config, jobs, log);
    return 'refusal' in result ? { object: o, warnings: [], refusal: result.refusal } : { object: result.pod, warnings: result.warnings };
  }
  const found = podTemplateOf(obj);
  if (!found) return { object: o, warnings: [] };
  const { template, owner, labels } = found;
  const pod: V1Pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      ...template.metadata,
      namespace: ns,
      labels: { ...template.metadata?.labels, ...labels },
      ownerReferences: [owner],
    },
    spec: template.spec ?? { containers: [] },
  };
  const result = await admitPod(pod, ns, config, jobs, log);
  if ('refusal' in result) return { object: o, warnings: [], refusal: result.refusal };
  const injectedTemplate: V1PodTemplateSpec = { ...template, spec: result.pod.spec };
  const annotations = result.pod.metadata?.annotations;
  if (annotations) injectedTemplate.metadata = { ...template.metadata, annotations };
  const copy = structuredClone(obj) as KubeObject & { spec: NonNullable<KubeObject['spec']> };
  if (copy.kind === 'CronJob') copy.spec.jobTemplate = { ...copy.spec.jobTemplate, spec: { ...copy.spec.jobTemplate?.spec, template: injectedTemplate } };
  else copy.spec.template = injectedTemplate;
  return { object: copy, warnings: result.warnings };
}
