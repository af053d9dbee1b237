import type { Logger } from 'pino';
import { KueuerError } from '../errors.js';
import { AmqpTransport } from './amqp.js';
import { parseKafkaUrl, type KafkaSpec } from './kafka-config.js';
import { KafkaTransport, type KafkaDelivery } from './kafka.js';
import { MemoryTransport } from './memory.js';
import type { Transport } from './transport.js';

/** What `--backend` accepts; parsed once at start-up so a typo fails there. */
export type BackendSpec = { kind: 'memory' } | { kind: 'amqp'; url: string } | { kind: 'kafka'; spec: KafkaSpec };

export function parseBackend(value: string): BackendSpec {
  if (value === 'memory') return { kind: 'memory' };
  if (value.startsWith('kafka://')) return { kind: 'kafka', spec: parseKafkaUrl(value) };
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new KueuerError('KUEUER_ERR_BACKEND_URL', `expected "memory", an amqp://… URL or kafka://host:port, got ${JSON.stringify(value)}`);
  }
  if (url.protocol === 'amqp:' || url.protocol === 'amqps:') {
    if (!url.hostname) throw new KueuerError('KUEUER_ERR_BACKEND_URL', 'the amqp URL has no host');
    return { kind: 'amqp', url: value };
  }
  throw new KueuerError(
    'KUEUER_ERR_BACKEND_URL',
    `unsupported backend scheme ${JSON.stringify(url.protocol)}; expected "memory", amqp://, amqps:// or kafka://`,
  );
}

export interface TransportOptions {
  /** memory only: how long an unacked delivery stays invisible without a heartbeat. */
  visibilityTimeoutMs: number;
  /** kafka only: partitions of a request topic Kueuer creates. */
  kafkaPartitions?: number;
  /** kafka only: when the request's offset is committed. */
  delivery?: KafkaDelivery;
  /** kafka, transactional delivery: the producer's transactional id. */
  kafkaTransactionalId?: string;
}

export async function createTransport(spec: BackendSpec, log: Logger, options: TransportOptions): Promise<Transport> {
  switch (spec.kind) {
    case 'memory':
      return new MemoryTransport({ visibilityTimeoutMs: options.visibilityTimeoutMs });
    case 'amqp':
      return AmqpTransport.connect(spec.url, log);
    case 'kafka':
      return KafkaTransport.connect(
        spec.spec,
        {
          partitions: options.kafkaPartitions ?? 6,
          delivery: options.delivery ?? 'at-least-once',
          ...(options.kafkaTransactionalId ? { transactionalId: options.kafkaTransactionalId } : {}),
        },
        log,
      );
  }
}
