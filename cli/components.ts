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
}

export interface RunningSidecar {
  worker: Worker;
  stop(): Promise<void>;
}

export async function startSidecar(
  settings: SidecarSettings,
  transport: Transport,
  registry: Registry,
  log: Logger,
): Promise<RunningSidecar> {
  const appClient = new AppClient(settings.app, settings.concurrency, settings.maxResponseBytes);
  const worker = await startWorker(
    { queue: settings.queue, concurrency: settings.concurrency, replyTimeoutMs: 5_000 },
    transport,
    appClient,
    sidecarMetrics(registry, settings.queue),
    log,
  );
  return {
    worker,
    async stop() {
      await worker.stop();
      appClient.close();
    },
  };
}
