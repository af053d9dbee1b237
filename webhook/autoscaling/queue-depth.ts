/**
 * Reads a queue's backlog straight from the broker, for the HPA:
 * - RabbitMQ: ready + unacknowledged messages, from the management API (an
 *   AMQP passive declare reports only ready ones, and counting only those
 *   would scale down pods that are still working);
 * - Kafka: lag as KEDA computes it (latest − committed offset, summed over
 *   partitions); in-flight requests are not committed yet, so they count.
 */
import type { Logger } from 'pino';
import { KueuerError } from '../../shared/errors.js';
import type { BackendSpec } from '../../shared/transport/create-transport.js';
import { KafkaTransport } from '../../shared/transport/kafka.js';

export interface QueueDepth {
  backlog: number;
  /** Kafka: partitions of the queue's topic (more consumers than that sit idle). */
  partitions?: number;
}

export interface QueueDepthReader {
  readonly kind: string;
  /** One read of the broker per call. */
  read(queue: string): Promise<QueueDepth>;
  close(): Promise<void>;
}

/** `http://user:pass@host:15672` by default: the AMQP URL's host and credentials on the management port. */
export function managementUrlFor(amqpUrl: string, explicit?: string): { base: string; vhost: string; authorization: string } {
  const amqp = new URL(amqpUrl);
  const vhost = amqp.pathname.length > 1 ? decodeURIComponent(amqp.pathname.slice(1)) : '/';
  const mgmt = new URL(explicit ?? `${amqp.protocol === 'amqps:' ? 'https' : 'http'}://${amqp.hostname}:15672`);
  const user = decodeURIComponent(mgmt.username || amqp.username || 'guest');
  const pass = decodeURIComponent(mgmt.password || amqp.password || 'guest');
  mgmt.username = '';
  mgmt.password = '';
  return { base: mgmt.toString().replace(/\/$/, ''), vhost, authorization: `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}` };
}

export class RabbitMqDepth implements QueueDepthReader {
  readonly kind = 'amqp';
  private readonly mgmt: ReturnType<typeof managementUrlFor>;
  constructor(amqpUrl: string, managementUrl?: string) {
    this.mgmt = managementUrlFor(amqpUrl, managementUrl);
  }

  async read(queue: string): Promise<QueueDepth> {
    const url = `${this.mgmt.base}/api/queues/${encodeURIComponent(this.mgmt.vhost)}/${encodeURIComponent(queue)}`;
    const res = await fetch(url, { headers: { authorization: this.mgmt.authorization }, signal: AbortSignal.timeout(5000) });
    if (res.status === 404) return { backlog: 0 }; // not declared yet: nothing queued
    if (!res.ok) throw new KueuerError('KUEUER_ERR_BROKER_UNAVAILABLE', `RabbitMQ management API answered ${res.status} for ${url}`);
    const body = (await res.json()) as { messages_ready?: number; messages_unacknowledged?: number };
    return { backlog: (body.messages_ready ?? 0) + (body.messages_unacknowledged ?? 0) };
  }

  async close(): Promise<void> {}
}

export class KafkaDepth implements QueueDepthReader {
  readonly kind = 'kafka';
  constructor(private readonly transport: KafkaTransport) {}

  async read(queue: string): Promise<QueueDepth> {
    const depth = await this.transport.queueDepth(queue);
    return depth ? { backlog: depth.lag, partitions: depth.partitions } : { backlog: 0 };
  }

  close(): Promise<void> {
    return this.transport.close();
  }
}

export async function openQueueDepth(backend: BackendSpec, log: Logger, rabbitmqManagementUrl?: string): Promise<QueueDepthReader> {
  switch (backend.kind) {
    case 'amqp':
      return new RabbitMqDepth(backend.url, rabbitmqManagementUrl);
    case 'kafka':
      return new KafkaDepth(await KafkaTransport.connect(backend.spec, { partitions: 1, delivery: 'at-least-once' }, log));
    case 'memory':
      throw new KueuerError('KUEUER_ERR_BACKEND_URL', 'the memory backend lives inside `kueuer local`; the webhook cannot read its queues');
  }
}
