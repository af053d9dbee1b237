/**
 * Starting the sidecar: `startSidecar` runs one consumer on a transport it is
 * given (so `kueuer local` shares one in-process broker with the responder);
 * `runSidecar` is the whole `kueuer sidecar` process: broker, sidecar and admin
 * endpoints, stopped by the `stop` it returns.
 */
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { serveAdmin } from '../shared/admin-server.js';
import { newRegistry } from '../shared/metrics.js';
import { notReadyReason, openBackend, type Running } from '../shared/open-backend.js';
import { formatHostPort } from '../shared/options.js';
import type { Transport } from '../shared/transport/transport.js';
import { AppClient } from './app-client.js';
import { waitForApp } from './app-probe.js';
import type { SidecarOptions, SidecarSettings } from './config.js';
import { sidecarMetrics } from './metrics.js';
import { startWorker, type RetrySettings, type Worker } from './worker.js';

export interface RunningSidecar {
  /** Resolves once the app accepted a connection and the consumer runs (false if stopped first). */
  consuming: Promise<boolean>;
  /** Why the sidecar cannot take requests yet, or null. */
  notReadyReason(): string | null;
  stop(): Promise<void>;
}

function retrySettings(settings: SidecarSettings): RetrySettings | undefined {
  if (settings.retryStatuses === undefined) return undefined;
  return { statuses: new Set(settings.retryStatuses), maxAttempts: settings.maxAttempts, deadLetter: settings.deadLetter === 'on' };
}

/**
 * Starts a sidecar: waits for the app to accept connections, then consumes.
 * Returns at once, so the admin endpoints can answer while the app starts.
 */
export async function startSidecar(settings: SidecarSettings, transport: Transport, registry: Registry, log: Logger): Promise<RunningSidecar> {
  const appClient = new AppClient(settings.app, settings.concurrency, settings.maxResponseBytes);
  const metrics = sidecarMetrics(registry, settings.queue);
  const abort = new AbortController();
  let worker: Worker | undefined;
  const consuming = (async () => {
    if (!(await waitForApp(settings.app, log, abort.signal))) return false;
    const retry = retrySettings(settings);
    worker = await startWorker({ queue: settings.queue, concurrency: settings.concurrency, ...(retry ? { retry } : {}) }, transport, appClient, metrics, log);
    return true;
  })();
  consuming.catch((err: unknown) => log.error({ err: (err as Error).message }, 'could not start consuming'));
  return {
    consuming,
    notReadyReason: () => (worker ? null : 'waiting for the app to accept connections'),
    async stop() {
      abort.abort();
      await consuming.catch(() => false);
      // amqp and memory requeue a rejected delivery; Kafka cannot hand one record back (it would be given up).
      if (transport.kind !== 'kafka') appClient.handBackUnsent();
      await worker?.stop();
      appClient.close();
    },
  };
}

/** `kueuer sidecar`: its broker, the sidecar, and its admin endpoints (not ready until the app answers). */
export async function runSidecar(o: SidecarOptions, log: Logger): Promise<Running> {
  const registry = newRegistry();
  const transport = await openBackend(o, log, 'sidecar');
  const sidecar = await startSidecar(o, transport, registry, log);
  const { admin, address } = await serveAdmin({ registry, log, notReadyReason: notReadyReason(transport, () => sidecar.notReadyReason()) }, o.adminListen);
  log.info({ app: formatHostPort(o.app), admin: address, queue: o.queue, concurrency: o.concurrency }, 'sidecar ready');
  return {
    async stop() {
      await sidecar.stop();
      await admin.close();
      await transport.close();
    },
  };
}
