/** What the components' start functions share: their broker connection, readiness and the handle they return. */
import type { Logger } from 'pino';
import type { BackendSpec, KafkaDelivery, RabbitMqQueueType } from './transport/backend.js';
import { rabbitmqCa } from './transport/amqp/tls.js';
import { createTransport } from './transport/create-transport.js';
import type { Transport } from './transport/transport.js';

/** A started component or process; `stop` drains it and releases what it holds. */
export interface Running {
  stop(): Promise<void>;
}

export interface BackendOptions {
  backend: BackendSpec;
  kafkaPartitions: number;
  kafkaReplicationFactor: number;
  kafkaMinInsyncReplicas: number;
  delivery: KafkaDelivery;
  kafkaTransactionalId?: string | undefined;
  /** amqp only (absent: quorum). */
  rabbitmqQueueType?: RabbitMqQueueType;
  /** amqps only: the PEM of --rabbitmq-ca-file (absent: the broker Secret's ca.crt, if any). */
  rabbitmqCaFile?: string | undefined;
  /** memory backend only (`kueuer local`, which has the option). */
  visibilityTimeoutMs?: number;
  /** memory backend only: the embedded queue's bounds. */
  maxQueued?: number;
  maxQueuedBytes?: number;
}

/** The broker connection of a command, from its --backend and Kafka options. */
export async function openBackend(o: BackendOptions, log: Logger, component: 'responder' | 'sidecar' | 'local'): Promise<Transport> {
  if (o.backend.kind === 'memory' && (component !== 'local' || o.visibilityTimeoutMs === undefined)) {
    throw new Error(`--backend memory only works in \`kueuer local\`, where the ${component === 'responder' ? 'sidecar' : 'responder'} shares the process`);
  }
  return createTransport(o.backend, log, {
    // Read by the memory backend only, which has it (checked above); brokers ignore it.
    visibilityTimeoutMs: o.visibilityTimeoutMs ?? 0,
    ...(o.maxQueued !== undefined ? { maxQueued: o.maxQueued } : {}),
    ...(o.maxQueuedBytes !== undefined ? { maxQueuedBytes: o.maxQueuedBytes } : {}),
    kafkaPartitions: o.kafkaPartitions,
    kafkaReplication: { replicationFactor: o.kafkaReplicationFactor, minInsyncReplicas: o.kafkaMinInsyncReplicas },
    delivery: o.delivery,
    ...(o.kafkaTransactionalId ? { kafkaTransactionalId: o.kafkaTransactionalId } : {}),
    ...(o.rabbitmqQueueType ? { rabbitmqQueueType: o.rabbitmqQueueType } : {}),
    ...amqpCa(o),
  });
}

/** The private CA of an amqp backend: the file's, else the broker Secret's (checked: a bad one fails start-up). */
function amqpCa(o: BackendOptions): { rabbitmqCa?: string } {
  if (o.backend.kind !== 'amqp') return {};
  const ca = rabbitmqCa(o.rabbitmqCaFile, process.env);
  return ca !== undefined ? { rabbitmqCa: ca } : {};
}

/** /readyz's reason: the broker first, then what the component itself waits for. */
export function notReadyReason(transport: Transport, also: () => string | null = () => null): () => string | null {
  return () => (transport.isReady() ? also() : 'broker not connected');
}
