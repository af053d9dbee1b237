/**
 * Scale to zero and back, for plans with min 0 outside keda mode (KEDA does
 * it itself; the HPA does not act on a workload at 0 replicas, so it does
 * only 1↔N): the workload goes to 0 once its backlog has stayed at 0 for the
 * idle cooldown, and back to 1 as soon as the backlog is non-zero.
 */
import type { Cluster } from '../../shared/kube/cluster.js';
import type { Logger } from 'pino';
import type { EventRecorder } from '../../shared/kube/event-recorder.js';
import { workloadRef, type ScalingPlan, type Workload } from './desired-objects.js';

export type ScaleWorkload = (workload: Workload, replicas: number) => Promise<void>;

/** Sets a Deployment's or StatefulSet's replicas through its scale subresource. */
export function workloadScaler(cluster: Cluster): ScaleWorkload {
  const apps = cluster.clients.apps;
  return async (w, replicas) => {
    const body = { spec: { replicas } };
    const headers = cluster.mergePatch;
    if (w.kind === 'Deployment') await apps.patchNamespacedDeploymentScale({ name: w.metadata.name, namespace: w.metadata.namespace, body }, headers);
    else await apps.patchNamespacedStatefulSetScale({ name: w.metadata.name, namespace: w.metadata.namespace, body }, headers);
  };
}

export class ScaleToZero {
  /** When each queue's backlog was first seen at 0 (while its workload still runs). */
  private readonly idleSince = new Map<string, number>();

  constructor(
    private readonly scale: ScaleWorkload,
    private readonly events: EventRecorder,
    private readonly log: Logger,
  ) {}

  /** One step for a plan with min 0, given its backlog now. */
  async step(plan: ScalingPlan, backlog: number): Promise<void> {
    const w = plan.workload;
    const ref = workloadRef(w);
    const replicas = w.spec.replicas ?? 1;
    try {
      if (backlog > 0) {
        this.idleSince.delete(plan.queue);
        if (replicas === 0) {
          await this.scale(w, 1);
          await this.events.record(ref, 'Normal', 'KueuerScaledFromZero', `scaled to 1: ${backlog} requests waiting on queue ${plan.queue}`);
          this.events.forget(ref, 'KueuerScaledToZero');
        }
      } else if (replicas > 0) {
        const since = this.idleSince.get(plan.queue) ?? Date.now();
        this.idleSince.set(plan.queue, since);
        if (Date.now() - since >= plan.settings.idleCooldownSeconds * 1000) {
          await this.scale(w, 0);
          this.idleSince.delete(plan.queue);
          await this.events.record(ref, 'Normal', 'KueuerScaledToZero', `scaled to 0: queue ${plan.queue} idle for ${plan.settings.idleCooldownSeconds} s`);
          this.events.forget(ref, 'KueuerScaledFromZero');
        }
      }
    } catch (err) {
      this.log.warn({ err: (err as Error).message, queue: plan.queue }, 'could not scale the workload');
    }
  }
}
