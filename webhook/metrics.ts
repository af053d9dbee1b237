import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export function webhookMetrics(registry: Registry) {
  const registers = [registry];
  const admissions = new Counter({
    name: 'kueuer_webhook_admissions_total',
    help: 'Admission requests by object kind and outcome (injected, unchanged, skipped, refused, error, ignored, bad_request)',
    labelNames: ['kind', 'outcome'] as const,
    registers,
  });
  const duration = new Histogram({
    name: 'kueuer_webhook_admission_duration_seconds',
    help: 'Time from the first byte of an admission request to its answer, JSON parsing included',
    labelNames: ['kind'] as const,
    buckets: [0.0001, 0.0002, 0.0003, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.01, 0.025, 0.05, 0.1],
    registers,
  });
  const tlsReloads = new Counter({
    name: 'kueuer_webhook_tls_reloads_total',
    help: 'Serving certificate reloads after the files changed, by result',
    labelNames: ['result'] as const,
    registers,
  });
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
  return new Gauge({
    name: 'kueuer_webhook_leader',
    help: "1 on the replica holding the controllers' Lease (it writes autoscalers, EndpointSlices and Events), else 0",
    registers: [registry],
  });
}
