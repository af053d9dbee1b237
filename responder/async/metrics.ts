/** The asynchronous requests' metrics (docs/metrics.md, docs/async.md). */
import { Counter, Gauge, type Registry } from 'prom-client';
import { perRegistry } from '../../shared/metrics.js';

const instrumentsFor = perRegistry((registry: Registry) => {
  const registers = [registry];
  return {
    accepted: new Counter({
      name: 'kueuer_responder_async_accepted_total',
      help: 'Asynchronous requests accepted (answered 202) and queued',
      labelNames: ['queue'] as const,
      registers,
    }),
    completed: new Counter({
      name: 'kueuer_responder_async_completed_total',
      help: "Asynchronous requests whose app's answer was stored",
      labelNames: ['queue'] as const,
      registers,
    }),
    polls: new Counter({
      name: 'kueuer_responder_async_polls_total',
      help: 'Polls of asynchronous requests, by what they found (pending, done, expired: no answer by the deadline, cancelled: by a DELETE)',
      labelNames: ['queue', 'state'] as const,
      registers,
    }),
    cancelled: new Counter({
      name: 'kueuer_responder_async_cancelled_total',
      help: 'Asynchronous requests cancelled by a DELETE before their result (on RabbitMQ the app may already have started one; its answer is then discarded)',
      labelNames: ['queue'] as const,
      registers,
    }),
    dropped: new Counter({
      name: 'kueuer_responder_async_results_dropped_total',
      help: 'Answers of asynchronous requests not stored: unknown, expired or removed request, or the store full',
      labelNames: ['queue'] as const,
      registers,
    }),
    expired: new Counter({
      name: 'kueuer_responder_async_results_expired_total',
      help: 'Asynchronous requests and results removed at the end of their lifetime (embedded store; Redis expires its keys itself)',
      registers,
    }),
    records: new Gauge({
      name: 'kueuer_responder_async_store_records',
      help: 'Asynchronous requests and results held in the store',
      registers,
    }),
  };
});

export function asyncMetrics(registry: Registry, queue: string) {
  const m = instrumentsFor(registry);
  const q = { queue };
  for (const c of [m.accepted, m.completed, m.cancelled, m.dropped]) c.inc(q, 0);
  return {
    accepted: () => m.accepted.inc(q),
    completed: () => m.completed.inc(q),
    polled: (state: 'pending' | 'done' | 'expired' | 'cancelled') => m.polls.inc({ ...q, state }),
    cancelled: () => m.cancelled.inc(q),
    dropped: () => m.dropped.inc(q),
    /** For the store, shared by the queues of one process. */
    expired: (n: number) => m.expired.inc(n),
    records: (n: number) => m.records.set(n),
  };
}

export type AsyncMetrics = ReturnType<typeof asyncMetrics>;
