import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { LATENCY_BUCKETS, perRegistry } from '../shared/metrics.js';

const instrumentsFor = perRegistry(createInstruments);

function createInstruments(registry: Registry) {
  const registers = [registry];
  const requests = new Counter({
    name: 'kueuer_sidecar_requests_total',
    help: 'Requests processed, by the status sent back (registered codes as themselves, others as 2xx…5xx), "expired" when the deadline passed first, or "cancelled" when a DELETE cancelled it first (the app was not called)',
    labelNames: ['queue', 'code'] as const,
    registers,
  });
  const inFlight = new Gauge({
    name: 'kueuer_sidecar_in_flight_requests',
    help: 'Requests taken from the queue and not yet acked',
    labelNames: ['queue'] as const,
    registers,
  });
  const queueWait = new Histogram({
    name: 'kueuer_sidecar_queue_wait_seconds',
    help: 'Time a request waited in the queue before the sidecar took it',
    labelNames: ['queue'] as const,
    buckets: LATENCY_BUCKETS,
    registers,
  });
  const appDuration = new Histogram({
    name: 'kueuer_sidecar_app_duration_seconds',
    help: 'Time the app took to answer, retries included',
    labelNames: ['queue'] as const,
    buckets: LATENCY_BUCKETS,
    registers,
  });
  const appRetries = new Counter({
    name: 'kueuer_sidecar_app_retries_total',
    help: 'Calls to the app retried after connection refused or reset',
    labelNames: ['queue'] as const,
    registers,
  });
  const publishErrors = new Counter({
    name: 'kueuer_sidecar_publish_errors_total',
    help: 'Replies the broker did not accept; their requests go back to the queue',
    labelNames: ['queue'] as const,
    registers,
  });
  const consumeErrors = new Counter({
    name: 'kueuer_sidecar_consume_errors_total',
    help: 'Messages taken from the queue that could not be processed (malformed or from another queue)',
    labelNames: ['queue'] as const,
    registers,
  });
  const deadLetters = new Counter({
    name: 'kueuer_sidecar_dead_letters_total',
    help: 'Requests given up after --max-attempts answers in --retry-statuses (copied to <queue>.dead-letter unless --dead-letter off)',
    labelNames: ['queue'] as const,
    registers,
  });
  const repliesDropped = new Counter({
    name: 'kueuer_sidecar_replies_dropped_total',
    help: 'Replies nobody could receive, dropped after the app ran once: inbox_gone (the responder replica died) or invalid_destination (not a reply inbox)',
    labelNames: ['queue', 'reason'] as const,
    registers,
  });
  return { requests, inFlight, queueWait, appDuration, appRetries, publishErrors, consumeErrors, deadLetters, repliesDropped };
}

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
