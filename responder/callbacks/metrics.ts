import { Counter, Gauge, type Registry } from 'prom-client';
import { perRegistry } from '../../shared/metrics.js';

/** Why a callback was dead-lettered: the `reason` label and DeadLetterRecord.reason. */
export type DeadLetterReason = 'refused' | 'rejected' | 'redirect' | 'exhausted' | 'queue_full' | 'shutdown';

const instrumentsFor = perRegistry(createInstruments);

function createInstruments(registry: Registry) {
  const registers = [registry];
  const delivered = new Counter({
    name: 'kueuer_responder_callbacks_delivered_total',
    help: 'Async callbacks the receiver answered with 2xx',
    labelNames: ['queue'] as const,
    registers,
  });
  const retried = new Counter({
    name: 'kueuer_responder_callbacks_retried_total',
    help: 'Async callback attempts that failed and were tried again',
    labelNames: ['queue'] as const,
    registers,
  });
  const deadLettered = new Counter({
    name: 'kueuer_responder_callbacks_dead_lettered_total',
    help: 'Async callbacks given up, by reason',
    labelNames: ['queue', 'reason'] as const,
    registers,
  });
  const queued = new Gauge({
    name: 'kueuer_responder_callbacks_queued',
    help: 'Async callbacks held by this replica: waiting, in flight or waiting to retry',
    registers,
  });
  return { delivered, retried, deadLettered, queued };
}

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
