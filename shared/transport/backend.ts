/**
 * What `--backend` and the delivery options name, parsed once at start-up so
 * a typo fails there. Vocabulary only: nothing here loads a broker client
 * (create-transport.ts does, when a transport is actually opened).
 */
import { KueuerError } from '../errors.js';
import { parseKafkaUrl, type KafkaSpec } from './kafka/config.js';

export type BackendSpec = { kind: 'memory' } | { kind: 'amqp'; url: string } | { kind: 'kafka'; spec: KafkaSpec };

/** Kafka only: when a request's offset is committed (docs/kafka.md). */
export const KAFKA_DELIVERIES = ['at-least-once', 'at-most-once', 'transactional'] as const;
export type KafkaDelivery = (typeof KAFKA_DELIVERIES)[number];

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
