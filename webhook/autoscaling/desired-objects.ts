/**
 * What Kueuer wants to exist for an annotated workload: one autoscaling/v2
 * HPA on the queue's backlog (metric modes `external` and
 * `prometheus-adapter`), or one KEDA ScaledObject (mode `keda`). Pure.
 */
import type { V1OwnerReference, V2HorizontalPodAutoscaler } from '@kubernetes/client-node';
import { ANNOTATIONS, parsePodSettings, wantsInjection } from '../../shared/annotations.js';
import type { EventSubject } from '../../shared/kube/event-recorder.js';
import { qualifiedQueueName } from '../../shared/queue-names.js';
import { parseAutoscalingSettings, type AutoscalingSettings } from './settings.js';

export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
/**
 * `app.kubernetes.io/managed-by` on the HPAs and ScaledObjects Kueuer
 * generates (not the mirrored EndpointSlices' `SLICE_MANAGED_BY`): only
 * objects with this value are ever updated or deleted.
 */
export const AUTOSCALER_MANAGED_BY = 'kueuer';
export const QUEUE_LABEL = 'kueuer.io/queue';
export const BACKLOG_METRIC = 'kueuer_queue_backlog';
export const METRIC_MODES = ['external', 'prometheus-adapter', 'keda'] as const;
export type MetricMode = (typeof METRIC_MODES)[number];

export type WorkloadKind = 'Deployment' | 'StatefulSet';

/** The parts of a Deployment or StatefulSet the reconciler reads. */
export interface Workload {
  kind: WorkloadKind;
  metadata: { name: string; namespace: string; uid: string; annotations?: Record<string, string> };
  spec: { replicas?: number; template: { metadata?: { annotations?: Record<string, string>; labels?: Record<string, string> } } };
}

export interface ScalingPlan {
  workload: Workload;
  queue: string;
  settings: AutoscalingSettings;
}

export type WorkloadDecision = { kind: 'none' } | { kind: 'refuse'; message: string } | { kind: 'scale'; plan: ScalingPlan };

const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

/** Whether a workload gets an autoscaler, and with which settings; a refusal says why. */
export function decideWorkload(workload: Workload): WorkloadDecision {
  const template = workload.spec.template.metadata?.annotations;
  const wanted = wantsInjection(template, workload.spec.template.metadata?.labels);
  if (!wanted.ok || !wanted.value) return { kind: 'none' };
  const pod = parsePodSettings(template);
  if (!pod.ok) return { kind: 'refuse', message: pod.problems.join('; ') };
  const settings = parseAutoscalingSettings(workload.metadata.annotations, template);
  if (!settings.ok) return { kind: 'refuse', message: settings.problems.join('; ') };
  if (!settings.value.enabled) return { kind: 'none' };
  const queue = qualifiedQueueName(workload.metadata.namespace, pod.value.queue ?? workload.metadata.name);
  if (queue.length > 63 || !LABEL_VALUE.test(queue)) {
    return { kind: 'refuse', message: `queue ${queue} is too long for a metric label (63 characters at most); set a shorter ${ANNOTATIONS.queue}` };
  }
  return { kind: 'scale', plan: { workload, queue, settings: settings.value } };
}

/** `kueuer-deploy-<name>` / `kueuer-sts-<name>`: predictable, and a Deployment and a StatefulSet of one name do not collide. */
export function autoscalerName(workload: Pick<Workload, 'kind' | 'metadata'>): string {
  return `kueuer-${workload.kind === 'Deployment' ? 'deploy' : 'sts'}-${workload.metadata.name}`.slice(0, 253);
}

/** The workload as the subject of an Event. */
export function workloadRef(workload: Workload): EventSubject {
  const { name, namespace, uid } = workload.metadata;
  return { apiVersion: 'apps/v1', kind: workload.kind, name, namespace, uid };
}

function ownerReference(workload: Workload): V1OwnerReference {
  return { apiVersion: 'apps/v1', kind: workload.kind, name: workload.metadata.name, uid: workload.metadata.uid, controller: true, blockOwnerDeletion: true };
}

/** Name, labels and owner shared by the HPA and the ScaledObject. */
function autoscalerMetadata(plan: ScalingPlan) {
  const { workload, queue } = plan;
  return {
    name: autoscalerName(workload),
    namespace: workload.metadata.namespace,
    labels: { [MANAGED_BY_LABEL]: AUTOSCALER_MANAGED_BY, [QUEUE_LABEL]: queue },
    ownerReferences: [ownerReference(workload)],
  };
}

/** What every autoscaler of a plan starts with: its type, its metadata, the workload it scales. */
function autoscalerOf(plan: ScalingPlan, apiVersion: string, kind: string) {
  const target = { apiVersion: 'apps/v1', kind: plan.workload.kind, name: plan.workload.metadata.name };
  return { head: { apiVersion, kind, metadata: autoscalerMetadata(plan) }, scaleTargetRef: target };
}

/** Max replicas after the Kafka partition cap (never below 1). */
export function cappedMax(settings: AutoscalingSettings, maxCap: number | undefined): number {
  return maxCap !== undefined ? Math.max(1, Math.min(settings.maxReplicas, maxCap)) : settings.maxReplicas;
}

/**
 * The HPA does 1↔N: with min 0 its minimum is 1 and Kueuer itself does 0↔1
 * (the HPA does not act on a workload at 0 replicas). `maxCap` (a Kafka
 * topic's partition count) bounds max replicas.
 */
export function desiredHpa(plan: ScalingPlan, maxCap?: number): V2HorizontalPodAutoscaler {
  const { queue, settings } = plan;
  const max = cappedMax(settings, maxCap);
  const { head, scaleTargetRef } = autoscalerOf(plan, 'autoscaling/v2', 'HorizontalPodAutoscaler');
  return {
    ...head,
    spec: {
      scaleTargetRef,
      minReplicas: Math.max(1, Math.min(settings.minReplicas, max)),
      maxReplicas: max,
      metrics: [
        {
          type: 'External',
          external: {
            metric: { name: BACKLOG_METRIC, selector: { matchLabels: { queue } } },
            target: { type: 'AverageValue', averageValue: String(settings.targetBacklog) },
          },
        },
      ],
      behavior: { scaleDown: { stabilizationWindowSeconds: settings.scaleDownStabilizationSeconds } },
    },
  };
}

/**
 * How KEDA's metrics-api scaler verifies the webhook's self-signed HTTPS
 * certificate: a ClusterTriggerAuthentication (one for the cluster, since
 * ScaledObjects live in every opted-in namespace) whose secretTargetRef reads
 * a Secret in KEDA's own namespace. The scaler takes the CA as the auth
 * parameter `ca`, but only under `authMode: tls`, which also requires `cert`
 * and `key` (a client certificate; Kueuer's /backlog does not ask for one in
 * keda mode, so it is never sent): scripts/install.sh makes a throwaway one.
 */
export const BACKLOG_AUTH_NAME = 'kueuer-backlog';
export const BACKLOG_AUTH_SECRET = 'kueuer-backlog-tls';

/** The ClusterTriggerAuthentication the keda component and the chart ship (a unit test holds them equal). Pure. */
export function desiredBacklogAuthentication(): Record<string, unknown> {
  return {
    apiVersion: 'keda.sh/v1alpha1',
    kind: 'ClusterTriggerAuthentication',
    metadata: { name: BACKLOG_AUTH_NAME, labels: { 'app.kubernetes.io/name': 'kueuer' } },
    spec: {
      secretTargetRef: [
        { parameter: 'ca', name: BACKLOG_AUTH_SECRET, key: 'ca.crt' },
        { parameter: 'cert', name: BACKLOG_AUTH_SECRET, key: 'tls.crt' },
        { parameter: 'key', name: BACKLOG_AUTH_SECRET, key: 'tls.key' },
      ],
    },
  };
}

/** A KEDA ScaledObject reading the backlog from Kueuer's /backlog endpoint (KEDA's metrics-api scaler); KEDA does 0↔1 itself. */
export function desiredScaledObject(plan: ScalingPlan, backlogUrl: string, maxCap?: number): Record<string, unknown> {
  const { queue, settings } = plan;
  const max = cappedMax(settings, maxCap);
  const { head, scaleTargetRef } = autoscalerOf(plan, 'keda.sh/v1alpha1', 'ScaledObject');
  return {
    ...head,
    spec: {
      scaleTargetRef,
      minReplicaCount: Math.min(settings.minReplicas, max),
      maxReplicaCount: max,
      cooldownPeriod: settings.idleCooldownSeconds,
      advanced: { horizontalPodAutoscalerConfig: { behavior: { scaleDown: { stabilizationWindowSeconds: settings.scaleDownStabilizationSeconds } } } },
      triggers: [
        {
          type: 'metrics-api',
          metricType: 'AverageValue',
          metadata: {
            url: `${backlogUrl}/${encodeURIComponent(queue)}`,
            valueLocation: 'backlog',
            targetValue: String(settings.targetBacklog),
            authMode: 'tls',
          },
          // The CA that verifies the webhook's certificate (see desiredBacklogAuthentication).
          authenticationRef: { name: BACKLOG_AUTH_NAME, kind: 'ClusterTriggerAuthentication' },
        },
      ],
    },
  };
}
