/**
 * RabbitMQ's queue depth for the autoscaler: ready + unacknowledged messages,
 * from the management API (an AMQP passive declare reports only ready ones,
 * and counting only those would scale down pods that are still working).
 * Plain HTTP: no amqplib.
 */
import { KueuerError } from '../../errors.js';
import { amqpHostUrls } from './url.js';
import type { QueueDepth, QueueDepthReader } from '../transport.js';

/** `http://user:pass@host:15672` by default: the AMQP URL's host and credentials on the management port. */
export function managementUrlFor(amqpUrl: string, explicit?: string): { base: string; vhost: string; authorization: string } {
  const amqp = new URL(amqpHostUrls(amqpUrl)[0]!); // the first node of a cluster URL
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
