/** The asynchronous requests' metrics (docs/metrics.md, docs/async.md). */
import type { Registry } from 'prom-client';
import { counter, declareMetrics, gauge, perRegistry } from '../../shared/metrics.js';

const ASYNC_METRICS = {
  accepted: counter('kueuer_responder_async_accepted_total', 'Asynchronous requests accepted (answered 202) and queued', ['queue']),
  completed: counter('kueuer_responder_async_completed_total', "Asynchronous requests whose app's answer was stored", ['queue']),
  polls: counter(
    'kueuer_responder_async_polls_total',
    'Polls of asynchronous requests, by what they found (pending, done, expired: no answer by the deadline, cancelled: by a DELETE)',
    ['queue', 'state'],
  ),
  cancelled: counter(
    'kueuer_responder_async_cancelled_total',
    'Asynchronous requests cancelled by a DELETE before their result (on RabbitMQ the app may already have started one; its answer is then discarded)',
    ['queue'],
  ),
  dropped: counter(
    'kueuer_responder_async_results_dropped_total',
    'Answers of asynchronous requests not stored: unknown, expired or removed request, or the store full',
    ['queue'],
  ),
  expired: counter(
    'kueuer_responder_async_results_expired_total',
    'Asynchronous requests and results removed at the end of their lifetime (embedded store; Redis expires its keys itself)',
  ),
  records: gauge('kueuer_responder_async_store_records', 'Asynchronous requests and results held in the store'),
};

const instrumentsFor = perRegistry((registry: Registry) => declareMetrics(registry, ASYNC_METRICS));

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
