import type { Registry } from 'prom-client';
import { counter, declareMetrics, gauge, histogram, LATENCY_BUCKETS, perRegistry, statusLabel } from '../shared/metrics.js';

/** The responder's own metrics, per queue (docs/reference/metrics.md lists them from here). */
const RESPONDER_METRICS = {
  requests: counter(
    'kueuer_responder_requests_total',
    'Requests answered to clients, by HTTP status code (registered codes as themselves, others as 2xx…5xx)',
    ['queue', 'code'],
  ),
  pending: gauge('kueuer_responder_pending_requests', 'Clients currently held waiting for their answer', ['queue']),
  duration: histogram('kueuer_responder_request_duration_seconds', 'End-to-end time from request arrival to answer', ['queue'], LATENCY_BUCKETS),
  publishErrors: counter('kueuer_responder_publish_errors_total', 'Requests the broker did not accept (answered 503)', ['queue']),
  lateReplies: counter('kueuer_responder_late_replies_total', 'Replies that arrived after their client was answered or gone; dropped', ['queue']),
  clientDisconnects: counter('kueuer_responder_client_disconnects_total', 'Clients that went away before their answer', ['queue']),
  invalidReplies: counter('kueuer_responder_invalid_replies_total', 'Reply messages rejected as malformed or from another queue', ['queue']),
  sendTimeouts: counter('kueuer_responder_send_timeouts_total', 'Clients disconnected because they did not read their answer within --send-timeout', ['queue']),
};

const instrumentsFor = perRegistry((registry: Registry) => declareMetrics(registry, RESPONDER_METRICS));

export function responderMetrics(registry: Registry, queue: string) {
  const { requests, pending, duration, publishErrors, lateReplies, clientDisconnects, invalidReplies, sendTimeouts } = instrumentsFor(registry);
  const q = { queue };
  // Export every per-queue series from the start, at 0, so dashboards and alerts see them.
  for (const c of [publishErrors, lateReplies, clientDisconnects, invalidReplies, sendTimeouts]) c.inc(q, 0);
  pending.set(q, 0);
  return {
    answered: (code: number, seconds: number) => {
      requests.inc({ ...q, code: statusLabel(code) });
      duration.observe(q, seconds);
    },
    pendingSet: (n: number) => pending.set(q, n),
    publishError: () => publishErrors.inc(q),
    lateReply: () => lateReplies.inc(q),
    clientDisconnect: () => clientDisconnects.inc(q),
    invalidReply: () => invalidReplies.inc(q),
    sendTimeout: () => sendTimeouts.inc(q),
  };
}

export type ResponderMetrics = ReturnType<typeof responderMetrics>;
