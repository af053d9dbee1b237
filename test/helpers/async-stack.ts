/** A responder answering asynchronously and a sidecar, on a chosen backend, for the asynchronous request tests. */
import { Registry } from 'prom-client';
import { startResponder, startSidecar } from './components.js';
import type { AsyncSettings } from '../../responder/config.js';
import type { AsyncStore } from '../../responder/async/store.js';
import type { ResponderDeps } from '../../responder/server.js';
import type { Transport } from '../../shared/transport/transport.js';
import { brokers, newTransport, silentLog, uniqueQueue, waitFor, type BackendName } from './stack.js';
import { kafkaSidecarSettled } from './kafka-settled.js';

export interface AsyncStackOptions {
  appPort: number;
  async: AsyncSettings;
  queue?: string;
  store?: AsyncStore;
  concurrency?: number;
  /** Share a transport (memory: one embedded broker for two responders). */
  transport?: Transport;
  withSidecar?: boolean;
  timeoutMs?: number;
  /** The callbacks dispatcher (responder/callbacks/). */
  callbacks?: ResponderDeps['callbacks'];
}

export interface AsyncStack {
  url: string;
  queue: string;
  transport: Transport;
  registry: Registry;
  stopResponder(): Promise<void>;
  stop(): Promise<void>;
}

export async function startAsyncStack(backend: BackendName, o: AsyncStackOptions): Promise<AsyncStack> {
  const queue = o.queue ?? uniqueQueue('async');
  const transport = o.transport ?? (await newTransport(backend));
  const sidecarTransport = o.withSidecar === false ? undefined : backend === 'memory' ? transport : await newTransport(backend);
  const registry = new Registry();
  const sidecar = sidecarTransport
    ? await startSidecar(
        { app: { host: '127.0.0.1', port: o.appPort }, queue, concurrency: o.concurrency ?? 4, maxResponseBytes: 10 * 1024 * 1024 },
        sidecarTransport,
        new Registry(),
        silentLog,
      )
    : undefined;
  const { responder, address } = await startResponder(
    {
      listen: { host: '127.0.0.1', port: 0 },
      queue,
      timeoutMs: o.timeoutMs ?? 10_000,
      maxBodyBytes: 10 * 1024 * 1024,
      maxPending: 1_000,
      publishTimeoutMs: 2_000,
      headersTimeoutMs: 60_000,
      bodyTimeoutMs: 30_000,
      sendTimeoutMs: 30_000,
      async: o.async,
    },
    transport,
    registry,
    silentLog,
    { ...(o.store ? { asyncStore: o.store } : {}), ...(o.callbacks ? { callbacks: o.callbacks } : {}) },
  );
  if (backend !== 'memory') await waitFor(() => transport.isReady(), 20_000, 'the responder to be ready');
  if (backend === 'kafka' && sidecar) await kafkaSidecarSettled(brokers().kafka, queue, sidecar.consuming);
  let responderStopped = false;
  const stopResponder = async (): Promise<void> => {
    if (responderStopped) return;
    responderStopped = true;
    await responder.drain(500);
  };
  return {
    url: `http://127.0.0.1:${address.port}`,
    queue,
    transport,
    registry,
    stopResponder,
    async stop() {
      await stopResponder();
      await sidecar?.stop();
      if (!o.transport) await transport.close();
      if (sidecarTransport && sidecarTransport !== transport) await sidecarTransport.close();
    },
  };
}
