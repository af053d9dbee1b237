/**
 * Keeps one autoscaler per annotated workload in step: for every Deployment
 * and StatefulSet whose pod template has `kueuer.io/inject: "true"`, in a
 * namespace labelled `kueuer.io/injection=enabled`, an HPA (or a KEDA
 * ScaledObject in `keda` mode) owned by the workload and labelled
 * managed-by=kueuer. Objects without that label are never touched. Events on
 * the workload record every create, update, delete and refusal.
 *
 * The diffing is the ManagedSet's, the objects' home the autoscaler store's;
 * each poll the backlog poll reads every queue's backlog (for /metrics, the
 * Kafka partition cap and scale to zero).
 */
import type { V1Deployment, V1Namespace, V1StatefulSet } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { NAMESPACE_LABEL, NAMESPACE_LABEL_VALUE } from '../../shared/annotations.js';
import { EventRecorder } from '../../shared/kube/event-recorder.js';
import { ManagedSet, type Wanted } from '../../shared/kube/managed-set.js';
import { statusOf, type Cluster } from '../../shared/kube/cluster.js';
import { watcher } from '../../shared/kube/object-source.js';
import { SerialRuns } from '../../shared/serial.js';
import { autoscalerKind, autoscalerFingerprint, desiredAutoscaler, openAutoscalerStore, type Managed } from './autoscaler-store.js';
import { BacklogPoll } from './backlog-poll.js';
import { autoscalerName, decideWorkload, workloadRef, type MetricMode, type ScalingPlan, type Workload } from './desired-objects.js';
import type { AutoscalingMetrics } from './metrics.js';
import { checkExternalMetricsOwner, expectedMetricsService, type ServiceRef } from './metrics-owner.js';
import type { QueueDepthReader } from '../../shared/transport/transport.js';
import { ScaleToZero, workloadScaler } from './scale-to-zero.js';

export interface AutoscalingOptions {
  cluster: Cluster;
  mode: MetricMode;
  /** Where queue depth comes from; null when the webhook has no --backend (no scale to zero, no Kafka cap). */
  depth: QueueDepthReader | null;
  /** keda mode: the URL KEDA's metrics-api scaler reads backlogs from (`…/backlog`). */
  backlogUrl: string;
  pollMs: number;
  metrics: AutoscalingMetrics;
  log: Logger;
  /** external mode: the Service the external metrics APIService must point at (default: expectedMetricsService()). */
  metricsService?: ServiceRef;
  /**
   * Only the leader writes autoscalers, records Events, scales to zero and exports the per-queue
   * gauges; every replica plans (the metrics API answers from the plans). Default: always leads.
   */
  isLeader?: () => boolean;
}

export interface AutoscalingReconciler {
  /** The plans of the last reconcile, by queue (the metrics API answers for these). */
  plans(): ReadonlyMap<string, ScalingPlan>;
  /** Runs one reconcile now (tests, and after start). */
  reconcile(): Promise<void>;
  stop(): Promise<void>;
}

/** Re-check every minute as well: a failed write is retried even when nothing changes. */
const RESYNC_MS = 60_000;

function asWorkload(kind: Workload['kind'], o: V1Deployment | V1StatefulSet): Workload {
  return {
    kind,
    metadata: {
      name: o.metadata!.name!,
      namespace: o.metadata!.namespace!,
      uid: o.metadata!.uid!,
      ...(o.metadata?.annotations ? { annotations: o.metadata.annotations } : {}),
    },
    spec: { ...(o.spec?.replicas !== undefined ? { replicas: o.spec.replicas } : {}), template: { metadata: o.spec?.template?.metadata ?? {} } },
  };
}

export async function runAutoscaling(options: AutoscalingOptions): Promise<AutoscalingReconciler> {
  const { log, mode } = options;
  const isLeader = options.isLeader ?? (() => true);
  const { cluster } = options;
  // Before anything starts: refuse to take over another metrics server's APIService.
  if (mode === 'external') await checkExternalMetricsOwner(cluster, options.metricsService ?? expectedMetricsService(), log);
  const { core, apps } = cluster.clients;
  const watch = watcher(cluster, log);

  const namespaces = await watch<V1Namespace>(
    '/api/v1/namespaces',
    () => core.listNamespace({ labelSelector: `${NAMESPACE_LABEL}=${NAMESPACE_LABEL_VALUE}` }),
    `${NAMESPACE_LABEL}=${NAMESPACE_LABEL_VALUE}`,
  );
  const deployments = await watch<V1Deployment>('/apis/apps/v1/deployments', () => apps.listDeploymentForAllNamespaces());
  const statefulSets = await watch<V1StatefulSet>('/apis/apps/v1/statefulsets', () => apps.listStatefulSetForAllNamespaces());
  const store = await openAutoscalerStore(mode, cluster, log);
  const events = new EventRecorder(core, log, 'workload', isLeader);
  const backlogs = options.depth ? new BacklogPoll(options.depth, mode, new ScaleToZero(workloadScaler(cluster), events, log), options.metrics, log) : null;
  const kindName = autoscalerKind(mode);

  let currentPlans = new Map<string, ScalingPlan>();
  /** The workloads the running reconcile started from. */
  let seen: Workload[] = [];

  const workloads = (): Workload[] => {
    const optedIn = new Set(namespaces.list().map((n) => n.metadata?.name));
    return [...deployments.list().map((d) => asWorkload('Deployment', d)), ...statefulSets.list().map((s) => asWorkload('StatefulSet', s))].filter((w) =>
      optedIn.has(w.metadata.namespace),
    );
  };

  const desired = async (): Promise<Iterable<Wanted<Managed, ScalingPlan>>> => {
    const plans = new Map<string, ScalingPlan>();
    const wanted = new Map<string, Wanted<Managed, ScalingPlan>>();
    seen = workloads();
    for (const w of seen) {
      const decision = decideWorkload(w);
      if (decision.kind === 'refuse') {
        await events.record(workloadRef(w), 'Warning', 'KueuerAutoscalerRefused', `no autoscaler: ${decision.message}`);
        continue;
      }
      if (decision.kind !== 'scale') continue;
      const { plan } = decision;
      plans.set(plan.queue, plan);
      const object = desiredAutoscaler(mode, plan, options.backlogUrl, backlogs?.partitionCaps.get(plan.queue));
      wanted.set(`${w.metadata.namespace}/${autoscalerName(w)}`, { object, context: plan });
    }
    currentPlans = plans;
    return wanted.values();
  };

  /** Says when max replicas is below the annotation's because of the partition cap. */
  const capNote = ({ object, context: plan }: Wanted<Managed, ScalingPlan>): string => {
    const spec = object.spec as { maxReplicas?: number; maxReplicaCount?: number };
    const max = spec.maxReplicas ?? spec.maxReplicaCount;
    return max !== undefined && max < plan.settings.maxReplicas ? ` (max replicas capped at the topic's ${max} partitions)` : '';
  };

  const set = new ManagedSet<Managed, ScalingPlan>({
    store,
    desired,
    fingerprint: autoscalerFingerprint,
    async written(change, wanted) {
      const { object, context: plan } = wanted;
      const ref = workloadRef(plan.workload);
      if (change === 'created')
        await events.record(ref, 'Normal', 'KueuerAutoscalerCreated', `created ${kindName} ${object.metadata!.name} on queue ${plan.queue}${capNote(wanted)}`);
      else await events.record(ref, 'Normal', 'KueuerAutoscalerUpdated', `updated ${kindName} ${object.metadata!.name}${capNote(wanted)}`);
    },
    async writeFailed(err, { object, context: plan }, existed, key) {
      if (!existed && statusOf(err) === 409) {
        const message = `a ${kindName} named ${object.metadata!.name} exists and is not managed by Kueuer; Kueuer leaves it alone`;
        await events.record(workloadRef(plan.workload), 'Warning', 'KueuerAutoscalerRefused', message);
      } else {
        log.warn({ err: (err as Error).message, autoscaler: key }, 'could not write an autoscaler; retrying on the next change');
      }
    },
    async removed(stale, key) {
      const owner = seen.find((w) => w.metadata.uid === (stale.metadata?.ownerReferences?.[0]?.uid ?? ''));
      if (owner)
        await events.record(
          workloadRef(owner),
          'Normal',
          'KueuerAutoscalerDeleted',
          `deleted ${kindName} ${stale.metadata!.name}: the workload no longer asks for it`,
        );
      else log.info({ autoscaler: key }, 'deleted an autoscaler whose workload no longer asks for it');
    },
    removeFailed(err, _stale, key) {
      if (statusOf(err) !== 404) log.warn({ err: (err as Error).message, autoscaler: key }, 'could not delete a stale autoscaler');
    },
    runFailed: (err) => log.error({ err: (err as Error).message }, 'autoscaling reconcile failed'),
    active: isLeader,
  });

  await set.start([namespaces, deployments, statefulSets], RESYNC_MS);
  const polls = new SerialRuns(() => undefined);
  const poll = async (): Promise<void> => {
    if (!isLeader()) {
      // The queue series come from the leader only, so a sum over replicas counts each queue once.
      for (const gauge of [options.metrics.backlog, options.metrics.replicas, options.metrics.desiredReplicas]) gauge.reset();
      return;
    }
    if (backlogs && (await backlogs.poll(currentPlans.values()))) await set.reconcile();
  };
  const timer = setInterval(() => void polls.run(poll), options.pollMs);
  return {
    plans: () => currentPlans,
    reconcile: () => set.reconcile(),
    async stop() {
      clearInterval(timer);
      await polls.idle();
      await set.stop();
      for (const s of [namespaces, deployments, statefulSets]) await s.stop();
    },
  };
}
