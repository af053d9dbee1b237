/**
 * RabbitMQ's queue depth for the autoscaler: ready + unacknowledged messages,
 * from the management API (an AMQP passive declare reports only ready ones,
 * and counting only those would scale down pods that are still working).
 * Plain HTTP: no amqplib.
 */
import { describeNetworkCause } from '../../connect-errors.js';
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

/** What to change when the management API cannot be read (the URL never carries credentials: managementUrlFor strips them). */
export const MANAGEMENT_FIX =
  "set KUEUER_RABBITMQ_MANAGEMENT_URL (in the broker Secret, or --rabbitmq-management-url) to RabbitMQ's management API, e.g. http://USER:PASS@HOST:15672";

/** Why a fetch of the management API at `base` failed (fetch's own message is only "fetch failed"), with the fix. */
export function managementUnreachable(base: string, err: unknown): string {
  const cause = (err as { cause?: unknown }).cause ?? err;
  return `RabbitMQ's management API at ${base} did not answer: ${describeNetworkCause(cause)}; ${MANAGEMENT_FIX}`;
}

export class RabbitMqDepth implements QueueDepthReader {
  readonly kind = 'amqp';
  private readonly mgmt: ReturnType<typeof managementUrlFor>;
  constructor(amqpUrl: string, managementUrl?: string) {
    this.mgmt = managementUrlFor(amqpUrl, managementUrl);
  }

  async read(queue: string): Promise<QueueDepth> {
    const url = `${this.mgmt.base}/api/queues/${encodeURIComponent(this.mgmt.vhost)}/${encodeURIComponent(queue)}`;
    let res: Response;
    try {
      res = await fetch(url, { headers: { authorization: this.mgmt.authorization }, signal: AbortSignal.timeout(5000) });
    } catch (err) {
      throw new KueuerError('KUEUER_ERR_BROKER_UNAVAILABLE', `${managementUnreachable(this.mgmt.base, err)}`);
    }
    if (res.status === 404) return { backlog: 0 }; // not declared yet: nothing queued
    if (!res.ok) throw new KueuerError('KUEUER_ERR_BROKER_UNAVAILABLE', `RabbitMQ management API answered ${res.status} for ${url}; ${MANAGEMENT_FIX}`);
    const body = (await res.json()) as { messages_ready?: number; messages_unacknowledged?: number };
    return { backlog: (body.messages_ready ?? 0) + (body.messages_unacknowledged ?? 0) };
  }

  async close(): Promise<void> {}
}
