/**
 * The only entry that loads broker clients: amqplib and kafkajs are imported
 * here, lazily, when a transport or a depth reader of their backend is opened,
 * so parsing options or running `kueuer local` loads neither.
 */
import type { Logger } from 'pino';
import { KueuerError } from '../errors.js';
import type { BackendSpec, KafkaDelivery, RabbitMqQueueType } from './backend.js';
import type { TopicReplication } from './kafka/config.js';
import { MemoryTransport } from './memory.js';
import type { QueueDepthReader, Transport } from './transport.js';

export interface TransportOptions {
  /** memory only: how long an unacked delivery stays invisible without a heartbeat. */
  visibilityTimeoutMs: number;
  /** memory only: the embedded queue's bounds (unbounded when absent). */
  maxQueued?: number;
  maxQueuedBytes?: number;
  /** kafka only: partitions of a request topic Kueuer creates (the option spec holds the default). */
  kafkaPartitions: number;
  /** kafka only: replication of the topics Kueuer creates (default DEFAULT_TOPIC_REPLICATION in kafka/config.ts). */
  kafkaReplication?: TopicReplication;
  /** kafka only: when the request's offset is committed (the option spec holds the default). */
  delivery: KafkaDelivery;
  /** kafka, transactional delivery: the producer's transactional id. */
  kafkaTransactionalId?: string;
  /** amqp only: type of the durable queues declared (quorum unless given). */
  rabbitmqQueueType?: RabbitMqQueueType;
  /** amqps only: PEM of a private CA trusted besides Node's own (amqp/tls.ts). */
  rabbitmqCa?: string;
}

export async function createTransport(spec: BackendSpec, log: Logger, options: TransportOptions): Promise<Transport> {
  switch (spec.kind) {
    case 'memory':
      return new MemoryTransport({
        visibilityTimeoutMs: options.visibilityTimeoutMs,
        ...(options.maxQueued !== undefined ? { maxQueued: options.maxQueued } : {}),
        ...(options.maxQueuedBytes !== undefined ? { maxQueuedBytes: options.maxQueuedBytes } : {}),
      });
    case 'amqp': {
      const { AmqpTransport } = await import('./amqp/transport.js');
      return AmqpTransport.connect(spec.url, log, {
        queueType: options.rabbitmqQueueType ?? 'quorum',
        ...(options.rabbitmqCa !== undefined ? { ca: options.rabbitmqCa } : {}),
      });
    }
    case 'kafka': {
      const { KafkaTransport } = await import('./kafka/transport.js');
      return KafkaTransport.connect(
        spec.spec,
        {
          partitions: options.kafkaPartitions,
          delivery: options.delivery,
          ...(options.kafkaTransactionalId ? { transactionalId: options.kafkaTransactionalId } : {}),
          ...(options.kafkaReplication ? { replication: options.kafkaReplication } : {}),
        },
        log,
      );
    }
  }
}

/**
 * The autoscaler's view of a backend's queues:
 * - RabbitMQ: ready + unacknowledged messages, from the management API;
 * - Kafka: lag as KEDA computes it (latest − committed offset, summed over
 *   partitions), read with an admin client alone.
 */
export async function openQueueDepth(backend: BackendSpec, log: Logger, rabbitmqManagementUrl?: string): Promise<QueueDepthReader> {
  switch (backend.kind) {
    case 'amqp': {
      const { RabbitMqDepth } = await import('./amqp/depth.js');
      return new RabbitMqDepth(backend.url, rabbitmqManagementUrl);
    }
    case 'kafka': {
      const { KafkaDepth } = await import('./kafka/depth.js');
      return KafkaDepth.connect(backend.spec, log);
    }
    case 'memory':
      throw new KueuerError('KUEUER_ERR_BACKEND_URL', 'the memory backend lives inside `kueuer local`; the webhook cannot read its queues');
  }
}
