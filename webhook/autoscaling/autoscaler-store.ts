/**
 * Where generated autoscalers live: autoscaling/v2 HPAs (metric modes
 * `external` and `prometheus-adapter`) or KEDA ScaledObjects (mode `keda`),
 * behind one ManagedStore that watches only the ones labelled managed-by
 * Kueuer. Also what counts as drift in either.
 */
import type { KubernetesObject, V2HorizontalPodAutoscaler } from '@kubernetes/client-node';
import type { Cluster } from '../../shared/kube/cluster.js';
import type { Logger } from 'pino';
import { withResourceVersion, type ManagedStore } from '../../shared/kube/managed-set.js';
import { watcher } from '../../shared/kube/object-source.js';
import { stableJson } from '../../shared/stable-json.js';
import { AUTOSCALER_MANAGED_BY, desiredHpa, desiredScaledObject, MANAGED_BY_LABEL, QUEUE_LABEL, type MetricMode, type ScalingPlan } from './desired-objects.js';

export type Managed = KubernetesObject & { spec?: unknown };

/** Only the fields Kueuer sets: server-side defaults do not count as drift. */
export function autoscalerFingerprint(o: Managed): string {
  const meta = o.metadata ?? {};
  const labels = { [MANAGED_BY_LABEL]: meta.labels?.[MANAGED_BY_LABEL], [QUEUE_LABEL]: meta.labels?.[QUEUE_LABEL] };
  const owners = (meta.ownerReferences ?? []).map((r) => r.uid);
  const spec = o.spec as Record<string, unknown> | undefined;
  if (o.kind === 'ScaledObject' || (o as { apiVersion?: string }).apiVersion?.startsWith('keda.sh')) return stableJson({ labels, owners, spec });
  const s = (spec ?? {}) as V2HorizontalPodAutoscaler['spec'] & object;
  return stableJson({
    labels,
    owners,
    target: s.scaleTargetRef,
    min: s.minReplicas,
    max: s.maxReplicas,
    metrics: s.metrics,
    down: s.behavior?.scaleDown?.stabilizationWindowSeconds,
  });
}

/** The kind of autoscaler a mode generates, as Events name it. */
export function autoscalerKind(mode: MetricMode): string {
  return mode === 'keda' ? 'ScaledObject' : 'HorizontalPodAutoscaler';
}

/** The autoscaler a plan asks for in this mode; `cap` bounds max replicas (a Kafka topic's partitions). */
export function desiredAutoscaler(mode: MetricMode, plan: ScalingPlan, backlogUrl: string, cap: number | undefined): Managed {
  return mode === 'keda' ? desiredScaledObject(plan, backlogUrl, cap) : desiredHpa(plan, cap);
}

export async function openAutoscalerStore(mode: MetricMode, cluster: Cluster, log: Logger): Promise<ManagedStore<Managed>> {
  const watch = watcher(cluster, log);
  const managedSelector = `${MANAGED_BY_LABEL}=${AUTOSCALER_MANAGED_BY}`;
  if (mode === 'keda') {
    const custom = cluster.clients.custom;
    const g = { group: 'keda.sh', version: 'v1alpha1', plural: 'scaledobjects' };
    return {
      source: await watch<Managed>(
        '/apis/keda.sh/v1alpha1/scaledobjects',
        () => custom.listClusterCustomObject({ ...g, labelSelector: managedSelector }) as never,
        managedSelector,
      ),
      create: async (o) => void (await custom.createNamespacedCustomObject({ ...g, namespace: o.metadata!.namespace!, body: o })),
      replace: async (o, rv) =>
        void (await custom.replaceNamespacedCustomObject({
          ...g,
          namespace: o.metadata!.namespace!,
          name: o.metadata!.name!,
          body: withResourceVersion(o, rv),
        })),
      remove: async (namespace, name) => void (await custom.deleteNamespacedCustomObject({ ...g, namespace, name })),
    };
  }
  const autoscaling = cluster.clients.autoscaling;
  return {
    source: await watch<V2HorizontalPodAutoscaler>(
      '/apis/autoscaling/v2/horizontalpodautoscalers',
      () => autoscaling.listHorizontalPodAutoscalerForAllNamespaces({ labelSelector: managedSelector }),
      managedSelector,
    ),
    create: async (o) =>
      void (await autoscaling.createNamespacedHorizontalPodAutoscaler({ namespace: o.metadata!.namespace!, body: o as V2HorizontalPodAutoscaler })),
    replace: async (o, rv) =>
      void (await autoscaling.replaceNamespacedHorizontalPodAutoscaler({
        namespace: o.metadata!.namespace!,
        name: o.metadata!.name!,
        body: withResourceVersion(o as V2HorizontalPodAutoscaler, rv),
      })),
    remove: async (namespace, name) => void (await autoscaling.deleteNamespacedHorizontalPodAutoscaler({ namespace, name })),
  };
}
