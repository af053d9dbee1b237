/**
 * Each poll reads every planned queue's backlog once: exported on /metrics
 * (with the replicas it asks for), Kafka's partition count kept as the cap
 * on max replicas, and handed to scale to zero for plans with min 0.
 */
import type { Logger } from 'pino';
import { cappedMax, type MetricMode, type ScalingPlan } from './desired-objects.js';
import type { AutoscalingMetrics } from './metrics.js';
import type { QueueDepthReader } from '../../shared/transport/transport.js';
import type { ScaleToZero } from './scale-to-zero.js';

/** What the HPA's AverageValue rule asks for, for the dashboard: ceil(backlog / target) within min and max. */
export function desiredReplicas(backlog: number, s: ScalingPlan['settings'], cap?: number): number {
  const max = cappedMax(s, cap);
  if (backlog === 0) return s.minReplicas === 0 ? 0 : Math.min(s.minReplicas, max);
  return Math.min(max, Math.max(1, s.minReplicas, Math.ceil(backlog / s.targetBacklog)));
}

export class BacklogPoll {
  /** Kafka: partitions of each queue's topic, the cap on its max replicas. */
  readonly partitionCaps = new Map<string, number>();

  constructor(
    private readonly depth: QueueDepthReader,
    private readonly mode: MetricMode,
    private readonly scaleToZero: ScaleToZero,
    private readonly metrics: AutoscalingMetrics,
    private readonly log: Logger,
  ) {}

  /** Reads each plan's backlog once; resolves true when a partition cap changed (the autoscalers need rewriting). */
  async poll(plans: Iterable<ScalingPlan>): Promise<boolean> {
    let capsChanged = false;
    for (const plan of plans) {
      let backlog: number;
      try {
        const read = await this.depth.read(plan.queue);
        backlog = read.backlog;
        const partitions = read.partitions;
        if (partitions !== undefined && this.partitionCaps.get(plan.queue) !== partitions) {
          this.partitionCaps.set(plan.queue, partitions);
          capsChanged = true;
        }
      } catch (err) {
        this.metrics.depthErrors.inc({ queue: plan.queue });
        this.log.warn({ err: (err as Error).message, queue: plan.queue }, 'cannot read the queue depth');
        continue;
      }
      this.metrics.backlog.set({ queue: plan.queue }, backlog);
      this.metrics.replicas.set({ queue: plan.queue }, plan.workload.spec.replicas ?? 1);
      this.metrics.desiredReplicas.set({ queue: plan.queue }, desiredReplicas(backlog, plan.settings, this.partitionCaps.get(plan.queue)));
      if (this.mode === 'keda' || plan.settings.minReplicas > 0) continue;
      await this.scaleToZero.step(plan, backlog);
    }
    return capsChanged;
  }
}
