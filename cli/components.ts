/**
 * Wiring shared by the commands: each function starts one component on a
 * transport it is given, so `local` can run several over one in-process broker.
 */
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { buildResponder, type Responder } from '../responder/server.js';
import { responderMetrics } from '../responder/metrics.js';
import type { ResponderSettings } from '../responder/config.js';
import { listen } from '../shared/admin-server.js';
import type { HostPort } from '../shared/options.js';
import type { Transport } from '../shared/transport/transport.js';
import { AppClient } from '../sidecar/app-client.js';
import { sidecarMetrics } from '../sidecar/metrics.js';
import { startWorker, type Worker } from '../sidecar/worker.js';
import { waitForApp } from '../sidecar/app-probe.js';

export interface RunningResponder {
  responder: Responder;
  address: HostPort;
}

export async function startResponder(
  settings: ResponderSettings & { listen: HostPort },
  transport: Transport,
  registry: Registry,
  log: Logger,
): Promise<RunningResponder> {
  const responder = await buildResponder(settings, transport, responderMetrics(registry, settings.queue), log);
  const address = await listen(responder.app, settings.listen);
  return { responder, address };
}

export interface SidecarSettings {
  app: HostPort;
  queue: string;
  concurrency: number;
  maxResponseBytes: number;
  /** App statuses retried (default none), calls per request, and whether exhausted requests are dead-lettered. */
  retryStatuses?: number[];
  maxAttempts?: number;
  deadLetter?: 'on' | 'off';
}

export interface RunningSidecar {
  /** Resolves once the app accepted a connection and the consumer runs (false if stopped first). */
  consuming: Promise<boolean>;
  /** Why the sidecar cannot take requests yet, or null. */
  notReadyReason(): string | null;
  stop(): Promise<void>;
}

/**
 * Starts a sidecar: waits for the app to accept connections, then consumes.
 * Returns at once, so the admin endpoints can answer while the app starts.
 */
export async function startSidecar(
  settings: SidecarSettings,
  transport: Transport,
  registry: Registry,
  log: Logger,
): Promise<RunningSidecar> {
  const appClient = new AppClient(settings.app, settings.concurrency, settings.maxResponseBytes);
  const metrics = sidecarMetrics(registry, settings.queue);
  const abort = new AbortController();
  let worker: Worker | undefined;
  const consuming = (async () => {
    if (!(await waitForApp(settings.app, log, abort.signal))) return false;
    worker = await startWorker(
      {
        queue: settings.queue,
        concurrency: settings.concurrency,
        replyTimeoutMs: 5_000,
        retry: { statuses: new Set(settings.retryStatuses ?? []), maxAttempts: settings.maxAttempts ?? 3, deadLetter: (settings.deadLetter ?? 'on') === 'on' },
      },
      transport,
      appClient,
      metrics,
      log,
    );
    return true;
  })();
  consuming.catch((err: unknown) => log.error({ err: (err as Error).message }, 'could not start consuming'));
  return {
    consuming,
    notReadyReason: () => (worker ? null : 'waiting for the app to accept connections'),
    async stop() {
      abort.abort();
      await consuming.catch(() => false);
      await worker?.stop();
      appClient.close();
    },
  };
}
