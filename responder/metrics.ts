import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { LATENCY_BUCKETS, perRegistry, statusLabel } from '../shared/metrics.js';

const instrumentsFor = perRegistry(createInstruments);

function createInstruments(registry: Registry) {
  const registers = [registry];
  const requests = new Counter({
    name: 'kueuer_responder_requests_total',
    help: 'Requests answered to clients, by HTTP status code (registered codes as themselves, others as 2xx…5xx)',
    labelNames: ['queue', 'code'] as const,
    registers,
  });
  const pending = new Gauge({
    name: 'kueuer_responder_pending_requests',
    help: 'Clients currently held waiting for their answer',
    labelNames: ['queue'] as const,
    registers,
  });
  const duration = new Histogram({
    name: 'kueuer_responder_request_duration_seconds',
    help: 'End-to-end time from request arrival to answer',
    labelNames: ['queue'] as const,
    buckets: LATENCY_BUCKETS,
    registers,
  });
  const publishErrors = new Counter({
    name: 'kueuer_responder_publish_errors_total',
    help: 'Requests the broker did not accept (answered 503)',
    labelNames: ['queue'] as const,
    registers,
  });
  const lateReplies = new Counter({
    name: 'kueuer_responder_late_replies_total',
    help: 'Replies that arrived after their client was answered or gone; dropped',
    labelNames: ['queue'] as const,
    registers,
  });
  const clientDisconnects = new Counter({
    name: 'kueuer_responder_client_disconnects_total',
    help: 'Clients that went away before their answer',
    labelNames: ['queue'] as const,
    registers,
  });
  const invalidReplies = new Counter({
    name: 'kueuer_responder_invalid_replies_total',
    help: 'Reply messages rejected as malformed or from another queue',
    labelNames: ['queue'] as const,
    registers,
  });
  const sendTimeouts = new Counter({
    name: 'kueuer_responder_send_timeouts_total',
    help: 'Clients disconnected because they did not read their answer within --send-timeout',
    labelNames: ['queue'] as const,
    registers,
  });
  return { requests, pending, duration, publishErrors, lateReplies, clientDisconnects, invalidReplies, sendTimeouts };
}

export function responderMetrics(registry: Registry, queue: string) {
  const { requests, pending, duration, publishErrors, lateReplies, clientDisconnects, invalidReplies, sendTimeouts } = instrumentsFor(registry);
  const q = { queue };
  // Export every per-queue series from the start, at 0, so dashboards and alerts see them.
  for (const counter of [publishErrors, lateReplies, clientDisconnects, invalidReplies, sendTimeouts]) counter.inc(q, 0);
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
