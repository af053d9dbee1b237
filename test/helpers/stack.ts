/**
 * Runs a responder and a sidecar in the test process on a chosen backend.
 * On amqp each gets its own connection, as in a cluster; on memory they share
 * the embedded broker, as in `kueuer local`.
 */
import { randomBytes } from 'node:crypto';
import { pino, type Logger } from 'pino';
import { inject } from 'vitest';
import { Registry } from 'prom-client';
import { startResponder, startSidecar, type RunningResponder, type RunningSidecar } from './components.js';
import type { ResponderSettings } from '../../responder/config.js';
import { MemoryTransport } from '../../shared/transport/memory.js';
import { parseBackend } from '../../shared/transport/backend.js';
import { createTransport } from '../../shared/transport/create-transport.js';
import type { Transport } from '../../shared/transport/transport.js';
import { waitFor } from './poll.js';
import { kafkaSidecarSettled } from './kafka-settled.js';

export type BackendName = 'memory' | 'amqp' | 'kafka';

export const silentLog: Logger = pino({ level: process.env.KUEUER_TEST_LOG ?? 'silent' });

export function uniqueQueue(prefix = 'test'): string {
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}

/** The broker URLs the global setup provides. */
export const brokers = (): Record<Exclude<BackendName, 'memory'>, string> => ({ amqp: inject('amqpUrl'), kafka: inject('kafkaUrl') });

export async function newTransport(backend: BackendName, url?: string): Promise<Transport> {
  if (backend === 'memory') return new MemoryTransport({ visibilityTimeoutMs: 5_000 });
  const transport = await createTransport(parseBackend(url ?? brokers()[backend]), silentLog, {
    visibilityTimeoutMs: 5_000,
    kafkaPartitions: 3,
    delivery: 'at-least-once',
  });
  await waitFor(() => transport.isReady(), 20_000, `${backend} transport to connect`);
  return transport;
}

export interface StackOptions extends Partial<ResponderSettings> {
  appPort: number;
  concurrency?: number;
  maxResponseBytes?: number;
}

export interface Stack {
  url: string;
  queue: string;
  responderTransport: Transport;
  sidecarTransport: Transport;
  responderRegistry: Registry;
  sidecarRegistry: Registry;
  responder: RunningResponder;
  sidecar: RunningSidecar;
  stop(): Promise<void>;
}

export async function startStack(backend: BackendName, options: StackOptions): Promise<Stack> {
  const queue = options.queue ?? uniqueQueue();
  const responderTransport = await newTransport(backend);
  const sidecarTransport = backend === 'memory' ? responderTransport : await newTransport(backend);
  const responderRegistry = new Registry();
  const sidecarRegistry = new Registry();
  const sidecar = await startSidecar(
    {
      app: { host: '127.0.0.1', port: options.appPort },
      queue,
      concurrency: options.concurrency ?? 4,
      maxResponseBytes: options.maxResponseBytes ?? 10 * 1024 * 1024,
    },
    sidecarTransport,
    sidecarRegistry,
    silentLog,
  );
  const responder = await startResponder(
    {
      listen: { host: '127.0.0.1', port: 0 },
      queue,
      timeoutMs: options.timeoutMs ?? 10_000,
      maxBodyBytes: options.maxBodyBytes ?? 10 * 1024 * 1024,
      maxPending: options.maxPending ?? 10_000,
      publishTimeoutMs: options.publishTimeoutMs ?? 1_000,
      headersTimeoutMs: options.headersTimeoutMs ?? 60_000,
      bodyTimeoutMs: options.bodyTimeoutMs ?? 30_000,
      sendTimeoutMs: options.sendTimeoutMs ?? 30_000,
    },
    responderTransport,
    responderRegistry,
    silentLog,
  );
  // Like a readiness probe: the Kafka transport is ready once the reply inbox exists.
  if (backend !== 'memory') await waitFor(() => responderTransport.isReady(), 20_000, 'the responder to be ready');
  if (backend === 'kafka') await kafkaSidecarSettled(brokers().kafka, queue, sidecar.consuming);
  return {
    url: `http://127.0.0.1:${responder.address.port}`,
    queue,
    responderTransport,
    sidecarTransport,
    responderRegistry,
    sidecarRegistry,
    responder,
    sidecar,
    async stop() {
      await responder.responder.drain(1_000);
      await sidecar.stop();
      await responderTransport.close();
      if (sidecarTransport !== responderTransport) await sidecarTransport.close();
    },
  };
}

export { waitFor };

/** The value of one sample of a metric, or 0 when it has none yet. */
export async function metricValue(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (!metric) throw new Error(`no metric ${name}`);
  const { values } = await metric.get();
  const match = values.find((v) => Object.entries(labels).every(([k, val]) => String(v.labels[k]) === val));
  return match?.value ?? 0;
}
