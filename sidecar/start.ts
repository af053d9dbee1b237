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
import { handsDeliveriesBack, startWorker, type RetrySettings, type Worker } from './worker.js';

export interface RunningSidecar {
  /** Resolves once the app accepted a connection and the consumer runs (false if stopped first). */
  consuming: Promise<boolean>;
  /** Why the sidecar cannot take requests yet, or null. */
  notReadyReason(): string | null;
  /** Stops taking requests; resolves once those in flight are answered. Idempotent; `stop` drains first. */
  drain(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * How long a sidecar drained through /drain may stay up before /healthz fails:
 * the kubelet calls /drain from the app's preStop hook and stops the pod right
 * after, so a drained sidecar still running then was drained by something
 * else; the liveness probe restarts it and it consumes again.
 */
export const DRAINED_LIVENESS_MS = 120_000;

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
  let drained: Promise<void> | undefined;
  const drain = (): Promise<void> =>
    (drained ??= (async () => {
      abort.abort();
      await consuming.catch(() => false);
      // amqp and memory requeue a rejected delivery; Kafka cannot hand one record back (it would be given up).
      if (handsDeliveriesBack(transport)) appClient.handBackUnsent();
      await worker?.stop();
    })());
  return {
    consuming,
    notReadyReason: () => (drained ? 'draining: the pod is stopping' : worker ? null : 'waiting for the app to accept connections'),
    drain,
    async stop() {
      await drain();
      appClient.close();
    },
  };
}

/** `kueuer sidecar`: its broker, the sidecar, and its admin endpoints (not ready until the app answers). */
export async function runSidecar(o: SidecarOptions, log: Logger): Promise<Running> {
  const registry = newRegistry();
  const transport = await openBackend(o, log, 'sidecar');
  const sidecar = await startSidecar(o, transport, registry, log);
  let drainedAt: number | undefined;
  const drain = async (): Promise<void> => {
    if (drainedAt === undefined) {
      drainedAt = Date.now();
      log.info({ by: 'GET /drain (the preStop hook)' }, 'draining');
    }
    await sidecar.drain();
  };
  const notLiveReason = (): string | null =>
    drainedAt !== undefined && Date.now() - drainedAt > DRAINED_LIVENESS_MS
      ? `drained through /drain ${Math.round((Date.now() - drainedAt) / 1000)} s ago and still running: restart to consume again`
      : null;
  const { admin, address } = await serveAdmin(
    {
      registry,
      log,
      notReadyReason: notReadyReason(transport, () => sidecar.notReadyReason()),
      notLiveReason,
      drain,
      ...(o.drainToken ? { drainToken: o.drainToken } : {}),
    },
    o.adminListen,
  );
  log.info({ app: formatHostPort(o.app), admin: address, queue: o.queue, concurrency: o.concurrency }, 'sidecar ready');
  return {
    async stop() {
      await sidecar.stop();
      await admin.close();
      await transport.close();
    },
  };
}
