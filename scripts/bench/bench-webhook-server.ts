/**
 * The webhook's HTTPS server on its own, for the benchmark: the same
 * buildWebhookServer as `kueuer webhook`, without the cluster watches (the
 * benchmark admits pods, which need none). Prints the port when listening.
 *
 *   node dist/scripts/bench/bench-webhook-server.js CERT_DIR
 */
import { join } from 'node:path';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { defaultWebhookSettings, injectionConfig } from '../../webhook/config.js';
import { webhookMetrics } from '../../webhook/metrics.js';
import { buildWebhookServer } from '../../webhook/server.js';
import { JobWorkloads } from '../../webhook/admission/workload-queue.js';

const certs = process.argv[2]!;
const registry = new Registry();
const server = buildWebhookServer({
  tls: { cert: join(certs, 'tls.crt'), key: join(certs, 'tls.key') },
  config: injectionConfig(defaultWebhookSettings(), true, 'bench'),
  ports: { usedPorts: () => new Set() },
  // No cluster here: a Job-owned pod is refused (no Job to read) and refusals raise no Event.
  jobs: new JobWorkloads(() => Promise.reject(new Error('the benchmark has no cluster'))),
  refusalEvents: () => undefined,
  registry,
  metrics: webhookMetrics(registry),
  log: pino({ level: 'warn' }),
});
await server.listen({ host: '127.0.0.1', port: 0 });
console.log(String((server.server.address() as { port: number }).port));
process.on('SIGTERM', () => void server.close().then(() => process.exit(0)));
