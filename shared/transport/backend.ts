/**
 * What `--backend` and the delivery options name, parsed once at start-up so
 * a typo fails there. Vocabulary only: nothing here loads a broker client
 * (create-transport.ts does, when a transport is actually opened).
 */
import { KueuerError } from '../errors.js';
import { amqpHostUrls, redactRaw } from './amqp/url.js';
import { parseKafkaUrl, type KafkaSpec } from './kafka/config.js';

export type BackendSpec = { kind: 'memory' } | { kind: 'amqp'; url: string } | { kind: 'kafka'; spec: KafkaSpec };

/** Kafka only: when a request's offset is committed (docs/kafka.md). */
export const KAFKA_DELIVERIES = ['at-least-once', 'at-most-once', 'transactional'] as const;
export type KafkaDelivery = (typeof KAFKA_DELIVERIES)[number];

/** RabbitMQ only: the type of the durable queues Kueuer declares (docs/rabbitmq.md). */
export const RABBITMQ_QUEUE_TYPES = ['quorum', 'classic'] as const;
export type RabbitMqQueueType = (typeof RABBITMQ_QUEUE_TYPES)[number];

export function parseBackend(value: string): BackendSpec {
  if (value === 'memory') return { kind: 'memory' };
  if (value.startsWith('kafka://')) return { kind: 'kafka', spec: parseKafkaUrl(value) };
  if (/^amqps?:\/\/[^/?#]*,/.test(value)) {
    // Several nodes of one cluster: amqp://user:pass@host1,host2,host3/vhost.
    try {
      amqpHostUrls(value);
    } catch (err) {
      throw new KueuerError('KUEUER_ERR_BACKEND_URL', (err as Error).message);
    }
    return { kind: 'amqp', url: value };
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new KueuerError('KUEUER_ERR_BACKEND_URL', `expected "memory", an amqp://… URL or kafka://host:port, got ${JSON.stringify(redactRaw(value))}`);
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
