/** The autoscaler's own metrics: the backlog it serves to the HPA, per queue, for Prometheus and Grafana too. */
import { Counter, Gauge, type Registry } from 'prom-client';
import { perRegistry } from '../../shared/per-registry.js';

export interface AutoscalingMetrics {
  backlog: Gauge<'queue'>;
  depthErrors: Counter<'queue'>;
}

export const autoscalingMetrics = perRegistry(
  (registry: Registry): AutoscalingMetrics => ({
    backlog: new Gauge({ name: 'kueuer_queue_backlog', help: 'Requests waiting or in progress on a queue (RabbitMQ ready + unacked; Kafka lag), as served to the HPA', labelNames: ['queue'], registers: [registry] }),
    depthErrors: new Counter({ name: 'kueuer_queue_depth_errors_total', help: 'Failed reads of a queue depth from the broker', labelNames: ['queue'], registers: [registry] }),
  }),
);
