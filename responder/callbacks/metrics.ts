import type { Registry } from 'prom-client';
import { counter, declareMetrics, gauge, perRegistry } from '../../shared/metrics.js';

/** Why a callback was dead-lettered: the `reason` label and DeadLetterRecord.reason. */
export type DeadLetterReason = 'refused' | 'rejected' | 'redirect' | 'exhausted' | 'queue_full' | 'shutdown';

/** The async callbacks' metrics (docs/reference/metrics.md lists them from here). */
const CALLBACK_METRICS = {
  delivered: counter('kueuer_responder_callbacks_delivered_total', 'Async callbacks the receiver answered with 2xx', ['queue']),
  retried: counter('kueuer_responder_callbacks_retried_total', 'Async callback attempts that failed and were tried again', ['queue']),
  deadLettered: counter('kueuer_responder_callbacks_dead_lettered_total', 'Async callbacks given up, by reason', ['queue', 'reason']),
  queued: gauge('kueuer_responder_callbacks_queued', 'Async callbacks held by this replica: waiting, in flight or waiting to retry'),
};

const instrumentsFor = perRegistry((registry: Registry) => declareMetrics(registry, CALLBACK_METRICS));

export function callbackMetrics(registry: Registry) {
  const { delivered, retried, deadLettered, queued } = instrumentsFor(registry);
  queued.set(0);
  return {
    delivered: (queue: string) => delivered.inc({ queue }),
    retried: (queue: string) => retried.inc({ queue }),
    deadLettered: (queue: string, reason: DeadLetterReason) => deadLettered.inc({ queue, reason }),
    queuedSet: (n: number) => queued.set(n),
  };
}

export type CallbackMetrics = ReturnType<typeof callbackMetrics>;
