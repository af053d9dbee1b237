import type { Registry } from 'prom-client';
import { counter, declareMetrics, gauge, histogram, LATENCY_BUCKETS, perRegistry } from '../shared/metrics.js';

/** The sidecar's metrics, per queue (docs/reference/metrics.md lists them from here). */
const SIDECAR_METRICS = {
  requests: counter(
    'kueuer_sidecar_requests_total',
    'Requests processed, by the status sent back (registered codes as themselves, others as 2xx…5xx), "expired" when the deadline passed first, or "cancelled" when a DELETE cancelled it first (the app was not called)',
    ['queue', 'code'],
  ),
  inFlight: gauge('kueuer_sidecar_in_flight_requests', 'Requests taken from the queue and not yet acked', ['queue']),
  queueWait: histogram('kueuer_sidecar_queue_wait_seconds', 'Time a request waited in the queue before the sidecar took it', ['queue'], LATENCY_BUCKETS),
  appDuration: histogram('kueuer_sidecar_app_duration_seconds', 'Time the app took to answer, retries included', ['queue'], LATENCY_BUCKETS),
  appRetries: counter('kueuer_sidecar_app_retries_total', 'Calls to the app retried after connection refused or reset', ['queue']),
  publishErrors: counter('kueuer_sidecar_publish_errors_total', 'Replies the broker did not accept; their requests go back to the queue', ['queue']),
  consumeErrors: counter('kueuer_sidecar_consume_errors_total', 'Messages taken from the queue that could not be processed (malformed or from another queue)', [
    'queue',
  ]),
  deadLetters: counter(
    'kueuer_sidecar_dead_letters_total',
    'Requests given up after --max-attempts answers in --retry-statuses (copied to <queue>.dead-letter unless --dead-letter off)',
    ['queue'],
  ),
  repliesDropped: counter(
    'kueuer_sidecar_replies_dropped_total',
    'Replies nobody could receive, dropped after the app ran once: inbox_gone (the responder replica died) or invalid_destination (not a reply inbox)',
    ['queue', 'reason'],
  ),
};

const instrumentsFor = perRegistry((registry: Registry) => declareMetrics(registry, SIDECAR_METRICS));

export function sidecarMetrics(registry: Registry, queue: string) {
  const { requests, inFlight, queueWait, appDuration, appRetries, publishErrors, consumeErrors, deadLetters, repliesDropped } = instrumentsFor(registry);
  const q = { queue };
  // Export every per-queue series from the start, at 0, so dashboards and alerts see them.
  for (const counter of [appRetries, publishErrors, consumeErrors, deadLetters]) counter.inc(q, 0);
  inFlight.set(q, 0);
  for (const reason of ['inbox_gone', 'invalid_destination'] as const) repliesDropped.inc({ ...q, reason }, 0);
  return {
    processed: (code: string) => requests.inc({ ...q, code }),
    inFlightInc: () => inFlight.inc(q),
    inFlightDec: () => inFlight.dec(q),
    queueWait: (seconds: number) => queueWait.observe(q, seconds),
    appDuration: (seconds: number) => appDuration.observe(q, seconds),
    appRetry: () => appRetries.inc(q),
    publishError: () => publishErrors.inc(q),
    consumeError: () => consumeErrors.inc(q),
    deadLetter: () => deadLetters.inc(q),
    replyDropped: (reason: 'inbox_gone' | 'invalid_destination') => repliesDropped.inc({ ...q, reason }),
  };
}

export type SidecarMetrics = ReturnType<typeof sidecarMetrics>;
