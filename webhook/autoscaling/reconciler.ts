/**
 * Keeps one autoscaler per annotated workload in step: for every Deployment
 * and StatefulSet whose pod template has `kueuer.io/inject: "true"`, in a
 * namespace labelled `kueuer.io/injection=enabled`, an HPA (or a KEDA
 * ScaledObject in `keda` mode) owned by the workload and labelled
 * managed-by=kueuer. Objects without that label are never touched. Events on
 * the workload record every create, update, delete and refusal.
 *
 * Each poll it also reads every queue's backlog: exported on /metrics, used to
 * cap max replicas at a Kafka topic's partitions, and for scale to zero
 * (with min 0: the workload goes to 0 after the idle cooldown and back to 1
 * as soon as the backlog is non-zero; the HPA does 1↔N).
 */
import type { KubernetesObject, V1Deployment, V1Namespace, V1StatefulSet, V2HorizontalPodAutoscaler } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { NAMESPACE_LABEL, NAMESPACE_LABEL_VALUE } from '../../shared/annotations.js';
import { informerSource, kubeConfig, type ObjectSource } from '../../shared/kube/object-source.js';
import {
  autoscalerName,
  cappedMax,
  decideWorkload,
  desiredHpa,
  desiredScaledObject,
  MANAGED_BY,
  MANAGED_BY_LABEL,
  type MetricMode,
  type ScalingPlan,
  type Workload,
} from './desired-objects.js';
import type { AutoscalingMetrics } from './metrics.js';
import type { QueueDepthReader } from './queue-depth.js';

type Managed = KubernetesObject & { spec?: unknown };

export interface AutoscalingOptions {
  mode: MetricMode;
  /** Where queue depth comes from; null when the webhook has no --backend (no scale to zero, no Kafka cap). */
  depth: QueueDepthReader | null;
  /** keda mode: the URL KEDA's metrics-api scaler reads backlogs from (`…/backlog`). */
  backlogUrl: string;
  pollMs: number;
  metrics: AutoscalingMetrics;
  log: Logger;
}

/** Only the fields Kueuer sets: server-side defaults do not count as drift. */
export function autoscalerFingerprint(o: Managed): string {
  const meta = o.metadata ?? {};
  const labels = { [MANAGED_BY_LABEL]: meta.labels?.[MANAGED_BY_LABEL], 'kueuer.io/queue': meta.labels?.['kueuer.io/queue'] };
  const owners = (meta.ownerReferences ?? []).map((r) => r.uid);
  const spec = o.spec as Record<string, unknown> | undefined;
  if (o.kind === 'ScaledObject' || (o as { apiVersion?: string }).apiVersion?.startsWith('keda.sh')) return JSON.stringify({ labels, owners, spec });
  const s = (spec ?? {}) as V2HorizontalPodAutoscaler['spec'] & object;
  return JSON.stringify({
    labels,
    owners,
    target: s.scaleTargetRef,
    min: s.minReplicas,
    max: s.maxReplicas,
    metrics: s.metrics,
    down: s.behavior?.scaleDown?.stabilizationWindowSeconds,
  });
}

/** What the HPA's AverageValue rule asks for, for the dashboard: ceil(backlog / target) within min and max. */
export function desiredReplicas(backlog: number, s: ScalingPlan['settings'], cap?: number): number {
  const max = cappedMax(s, cap);
  if (backlog === 0) return s.minReplicas === 0 ? 0 : Math.min(s.minReplicas, max);
  return Math.min(max, Math.max(1, s.minReplicas, Math.ceil(backlog / s.targetBacklog)));
}

function asWorkload(kind: Workload['kind'], o: V1Deployment | V1StatefulSet): Workload {
  return {
    kind,
    metadata: { name: o.metadata!.name!, namespace: o.metadata!.namespace!, uid: o.metadata!.uid!, ...(o.metadata?.annotations ? { annotations: o.metadata.annotations } : {}) },
    spec: { ...(o.spec?.replicas !== undefined ? { replicas: o.spec.replicas } : {}), template: { metadata: o.spec?.template?.metadata ?? {} } },
  };
}

interface Store {
  source: ObjectSource<Managed>;
  create(o: Managed): Promise<void>;
  replace(o: Managed, resourceVersion: string | undefined): Promise<void>;
  remove(namespace: string, name: string): Promise<void>;
}

export interface AutoscalingReconciler {
  /** The plans of the last reconcile, by queue (the metrics API answers for these). */
  plans(): ReadonlyMap<string, ScalingPlan>;
  /** Runs one reconcile now (tests, and after start). */
  reconcile(): Promise<void>;
  stop(): Promise<void>;
}

export async function runAutoscaling(options: AutoscalingOptions): Promise<AutoscalingReconciler> {
  const { log, mode } = options;
  const k8s = await import('@kubernetes/client-node');
  const kc = await kubeConfig();
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const apps = kc.makeApiClient(k8s.AppsV1Api);
  const managedSelector = `${MANAGED_BY_LABEL}=${MANAGED_BY}`;

  const namespaces = await informerSource<V1Namespace>(
    '/api/v1/namespaces',
    () => core.listNamespace({ labelSelector: `${NAMESPACE_LABEL}=${NAMESPACE_LABEL_VALUE}` }),
    log,
    `${NAMESPACE_LABEL}=${NAMESPACE_LABEL_VALUE}`,
  );
  const deployments = await informerSource<V1Deployment>('/apis/apps/v1/deployments', () => apps.listDeploymentForAllNamespaces(), log);
  const statefulSets = await informerSource<V1StatefulSet>('/apis/apps/v1/statefulsets', () => apps.listStatefulSetForAllNamespaces(), log);

  let store: Store;
  if (mode === 'keda') {
    const custom = kc.makeApiClient(k8s.CustomObjectsApi);
    const g = { group: 'keda.sh', version: 'v1alpha1', plural: 'scaledobjects' };
    store = {
      source: await informerSource<Managed>(
        '/apis/keda.sh/v1alpha1/scaledobjects',
        () => custom.listClusterCustomObject({ ...g, labelSelector: managedSelector }) as never,
        log,
        managedSelector,
      ),
      create: async (o) => void (await custom.createNamespacedCustomObject({ ...g, namespace: o.metadata!.namespace!, body: o })),
      replace: async (o, rv) =>
        void (await custom.replaceNamespacedCustomObject({ ...g, namespace: o.metadata!.namespace!, name: o.metadata!.name!, body: { ...o, metadata: { ...o.metadata, resourceVersion: rv } } })),
      remove: async (namespace, name) => void (await custom.deleteNamespacedCustomObject({ ...g, namespace, name })),
    };
  } else {
    const autoscaling = kc.makeApiClient(k8s.AutoscalingV2Api);
    store = {
      source: (await informerSource<V2HorizontalPodAutoscaler>(
        '/apis/autoscaling/v2/horizontalpodautoscalers',
        () => autoscaling.listHorizontalPodAutoscalerForAllNamespaces({ labelSelector: managedSelector }),
        log,
        managedSelector,
      )) as ObjectSource<Managed>,
      create: async (o) => void (await autoscaling.createNamespacedHorizontalPodAutoscaler({ namespace: o.metadata!.namespace!, body: o as V2HorizontalPodAutoscaler })),
      replace: async (o, rv) =>
        void (await autoscaling.replaceNamespacedHorizontalPodAutoscaler({
          namespace: o.metadata!.namespace!,
          name: o.metadata!.name!,
          body: { ...(o as V2HorizontalPodAutoscaler), metadata: { ...o.metadata, resourceVersion: rv } },
        })),
      remove: async (namespace, name) => void (await autoscaling.deleteNamespacedHorizontalPodAutoscaler({ namespace, name })),
    };
  }

  /** Last event per workload and reason, so a steady refusal is recorded once, not every reconcile. */
  const recorded = new Map<string, string>();
  const event = async (w: Workload, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> => {
    const key = `${w.metadata.uid}/${reason}`;
    if (recorded.get(key) === message) return;
    recorded.set(key, message);
    const now = new Date();
    try {
      await core.createNamespacedEvent({
        namespace: w.metadata.namespace,
        body: {
          metadata: { generateName: `${w.metadata.name}.kueuer.`, namespace: w.metadata.namespace },
          involvedObject: { apiVersion: 'apps/v1', kind: w.kind, name: w.metadata.name, namespace: w.metadata.namespace, uid: w.metadata.uid },
          type,
          reason,
          message,
          source: { component: 'kueuer' },
          firstTimestamp: now,
          lastTimestamp: now,
          count: 1,
        },
      });
    } catch (err) {
      log.warn({ err: (err as Error).message, reason }, 'could not record an event');
    }
    (type === 'Warning' ? log.warn : log.info).call(log, { workload: `${w.kind}/${w.metadata.namespace}/${w.metadata.name}`, reason }, message);
  };

  let currentPlans = new Map<string, ScalingPlan>();
  const partitionCaps = new Map<string, number>();

  const workloads = (): Workload[] => {
    const optedIn = new Set(namespaces.list().map((n) => n.metadata?.name));
    return [
      ...deployments.list().map((d) => asWorkload('Deployment', d)),
      ...statefulSets.list().map((s) => asWorkload('StatefulSet', s)),
    ].filter((w) => optedIn.has(w.metadata.namespace));
  };

  const reconcileOnce = async (): Promise<void> => {
    const plans = new Map<string, ScalingPlan>();
    const desired = new Map<string, { object: Managed; plan: ScalingPlan }>();
    const current = workloads();
    for (const w of current) {
      const decision = decideWorkload(w);
      if (decision.kind === 'refuse') {
        await event(w, 'Warning', 'KueuerAutoscalerRefused', `no autoscaler: ${decision.message}`);
        continue;
      }
      if (decision.kind !== 'scale') continue;
      const { plan } = decision;
      plans.set(plan.queue, plan);
      const cap = partitionCaps.get(plan.queue);
      const object = (mode === 'keda' ? desiredScaledObject(plan, options.backlogUrl, cap) : desiredHpa(plan, cap)) as Managed;
      desired.set(`${w.metadata.namespace}/${autoscalerName(w)}`, { object, plan });
    }
    currentPlans = plans;
    const existing = new Map(store.source.list().map((o) => [`${o.metadata?.namespace}/${o.metadata?.name}`, o]));
    const kindName = mode === 'keda' ? 'ScaledObject' : 'HorizontalPodAutoscaler';
    for (const [key, { object, plan }] of desired) {
      const have = existing.get(key);
      existing.delete(key);
      const w = plan.workload;
      const spec = object.spec as { maxReplicas?: number; maxReplicaCount?: number };
      const max = spec.maxReplicas ?? spec.maxReplicaCount;
      const capNote = max !== undefined && max < plan.settings.maxReplicas ? ` (max replicas capped at the topic's ${max} partitions)` : '';
      try {
        if (!have) {
          await store.create(object);
          await event(w, 'Normal', 'KueuerAutoscalerCreated', `created ${kindName} ${object.metadata!.name} on queue ${plan.queue}${capNote}`);
        } else if (autoscalerFingerprint(have) !== autoscalerFingerprint(object)) {
          await store.replace(object, have.metadata?.resourceVersion);
          await event(w, 'Normal', 'KueuerAutoscalerUpdated', `updated ${kindName} ${object.metadata!.name}${capNote}`);
        }
      } catch (err) {
        const code = (err as { code?: number }).code;
        if (!have && code === 409) {
          await event(w, 'Warning', 'KueuerAutoscalerRefused', `a ${kindName} named ${object.metadata!.name} exists and is not managed by Kueuer; Kueuer leaves it alone`);
        } else {
          log.warn({ err: (err as Error).message, autoscaler: key }, 'could not write an autoscaler; retrying on the next change');
        }
      }
    }
    const byUid = new Map(current.map((w) => [w.metadata.uid, w]));
    for (const [key, stale] of existing) {
      try {
        await store.remove(stale.metadata!.namespace!, stale.metadata!.name!);
        const owner = byUid.get(stale.metadata?.ownerReferences?.[0]?.uid ?? '');
        if (owner) await event(owner, 'Normal', 'KueuerAutoscalerDeleted', `deleted ${kindName} ${stale.metadata!.name}: the workload no longer asks for it`);
        else log.info({ autoscaler: key }, 'deleted an autoscaler whose workload no longer asks for it');
      } catch (err) {
        if ((err as { code?: number }).code !== 404) log.warn({ err: (err as Error).message, autoscaler: key }, 'could not delete a stale autoscaler');
      }
    }
  };

  let running: Promise<void> = Promise.resolve();
  const reconcile = (): Promise<void> => {
    running = running.then(reconcileOnce).catch((err: Error) => log.error({ err: err.message }, 'autoscaling reconcile failed'));
    return running;
  };

  /** Scale to zero and back, for plans with min 0 (not in keda mode: KEDA does it). */
  const idleSince = new Map<string, number>();
  const scaleTo = async (w: Workload, replicas: number): Promise<void> => {
    const body = { spec: { replicas } };
    const headers = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);
    if (w.kind === 'Deployment') await apps.patchNamespacedDeploymentScale({ name: w.metadata.name, namespace: w.metadata.namespace, body }, headers);
    else await apps.patchNamespacedStatefulSetScale({ name: w.metadata.name, namespace: w.metadata.namespace, body }, headers);
  };
  const poll = async (): Promise<void> => {
    const depth = options.depth;
    if (!depth) return;
    let capsChanged = false;
    for (const plan of currentPlans.values()) {
      let backlog: number;
      try {
        const read = await depth.read(plan.queue);
        backlog = read.backlog;
        const partitions = read.partitions;
        if (partitions !== undefined && partitionCaps.get(plan.queue) !== partitions) {
          partitionCaps.set(plan.queue, partitions);
          capsChanged = true;
        }
      } catch (err) {
        options.metrics.depthErrors.inc({ queue: plan.queue });
        log.warn({ err: (err as Error).message, queue: plan.queue }, 'cannot read the queue depth');
        continue;
      }
      options.metrics.backlog.set({ queue: plan.queue }, backlog);
      options.metrics.replicas.set({ queue: plan.queue }, plan.workload.spec.replicas ?? 1);
      options.metrics.desiredReplicas.set({ queue: plan.queue }, desiredReplicas(backlog, plan.settings, partitionCaps.get(plan.queue)));
      if (mode === 'keda' || plan.settings.minReplicas > 0) continue;
      const w = plan.workload;
      const replicas = w.spec.replicas ?? 1;
      try {
        if (backlog > 0) {
          idleSince.delete(plan.queue);
          if (replicas === 0) {
            await scaleTo(w, 1);
            await event(w, 'Normal', 'KueuerScaledFromZero', `scaled to 1: ${backlog} requests waiting on queue ${plan.queue}`);
            recorded.delete(`${w.metadata.uid}/KueuerScaledToZero`);
          }
        } else if (replicas > 0) {
          const since = idleSince.get(plan.queue) ?? Date.now();
          idleSince.set(plan.queue, since);
          if (Date.now() - since >= plan.settings.idleCooldownSeconds * 1000) {
            await scaleTo(w, 0);
            idleSince.delete(plan.queue);
            await event(w, 'Normal', 'KueuerScaledToZero', `scaled to 0: queue ${plan.queue} idle for ${plan.settings.idleCooldownSeconds} s`);
            recorded.delete(`${w.metadata.uid}/KueuerScaledFromZero`);
          }
        }
      } catch (err) {
        log.warn({ err: (err as Error).message, queue: plan.queue }, 'could not scale the workload');
      }
    }
    if (capsChanged) await reconcile();
  };

  for (const source of [namespaces, deployments, statefulSets, store.source]) source.onChange(() => void reconcile());
  await reconcile();
  let polling: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    polling = polling.then(poll).catch(() => undefined);
  }, options.pollMs);
  const resync = setInterval(() => void reconcile(), 60_000);
  resync.unref();
  return {
    plans: () => currentPlans,
    reconcile,
    async stop() {
      clearInterval(timer);
      clearInterval(resync);
      await polling;
      await running;
      for (const s of [namespaces, deployments, statefulSets, store.source]) await s.stop();
    },
  };
}
