/** The autoscaler's own metrics: the backlog it serves to the HPA, per queue, for Prometheus and Grafana too. */
import { Counter, Gauge, type Registry } from 'prom-client';
import { perRegistry } from '../../shared/per-registry.js';

export interface AutoscalingMetrics {
  backlog: Gauge<'queue'>;
  depthErrors: Counter<'queue'>;
  replicas: Gauge<'queue'>;
  desiredReplicas: Gauge<'queue'>;
}

export const autoscalingMetrics = perRegistry((registry: Registry): AutoscalingMetrics => ({
  backlog: new Gauge({
    name: 'kueuer_queue_backlog',
    help: 'Requests waiting or in progress on a queue (RabbitMQ ready + unacked; Kafka lag), as served to the HPA',
    labelNames: ['queue'],
    registers: [registry],
  }),
  replicas: new Gauge({ name: 'kueuer_workload_replicas', help: "The scaled workload's spec.replicas", labelNames: ['queue'], registers: [registry] }),
  desiredReplicas: new Gauge({
    name: 'kueuer_workload_desired_replicas',
    help: 'Replicas the backlog asks for: ceil(backlog / target backlog) within min and max (0 when idle and min is 0)',
    labelNames: ['queue'],
    registers: [registry],
  }),
  depthErrors: new Counter({
    name: 'kueuer_queue_depth_errors_total',
    help: 'Failed reads of a queue depth from the broker',
    labelNames: ['queue'],
    registers: [registry],
  }),
}));
