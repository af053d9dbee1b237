import type { Gauge, Registry } from 'prom-client';
import { counter, declareMetrics, gauge, histogram } from '../shared/metrics.js';

/** The webhook's metrics (docs/reference/metrics.md lists them from here); none has a queue label. */
const WEBHOOK_METRICS = {
  admissions: counter(
    'kueuer_webhook_admissions_total',
    'Admission requests by object kind and outcome (injected, unchanged, skipped, refused, error, ignored, bad_request)',
    ['kind', 'outcome'],
  ),
  duration: histogram(
    'kueuer_webhook_admission_duration_seconds',
    'Time from the first byte of an admission request to its answer, JSON parsing included',
    ['kind'],
    [0.0001, 0.0002, 0.0003, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.01, 0.025, 0.05, 0.1],
  ),
  tlsReloads: counter('kueuer_webhook_tls_reloads_total', 'Serving certificate reloads after the files changed, by result', ['result']),
};

export function webhookMetrics(registry: Registry) {
  const { admissions, duration, tlsReloads } = declareMetrics(registry, WEBHOOK_METRICS);
  for (const result of ['ok', 'error']) tlsReloads.inc({ result }, 0);
  return {
    admitted: (kind: string, outcome: string, seconds: number) => {
      admissions.inc({ kind, outcome });
      duration.observe({ kind }, seconds);
    },
    tlsReload: (result: 'ok' | 'error') => tlsReloads.inc({ result }),
  };
}

export type WebhookMetrics = ReturnType<typeof webhookMetrics>;

/** 1 on the webhook replica that won the controllers' Lease (webhook/start.ts), 0 on the others. */
export function leaderGauge(registry: Registry): Gauge {
  const help = "1 on the replica holding the controllers' Lease (it writes autoscalers, EndpointSlices and Events), else 0";
  return declareMetrics(registry, { leader: gauge('kueuer_webhook_leader', help) }).leader;
}
