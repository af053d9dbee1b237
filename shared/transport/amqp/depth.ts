/**
 * RabbitMQ's queue depth for the autoscaler: ready + unacknowledged messages,
 * from the management API (an AMQP passive declare reports only ready ones,
 * and counting only those would scale down pods that are still working).
 * Plain HTTP: no amqplib. With several nodes (a cluster URL, or several
 * management URLs) a node that is down sends the read to the next.
 */
import { describeNetworkCause } from '../../connect-errors.js';
import { KueuerError } from '../../errors.js';
import { amqpHostUrls } from './url.js';
import type { QueueDepth, QueueDepthReader } from '../transport.js';

type ManagementNode = { base: string; vhost: string; authorization: string };

/** One management node: `explicit` (its own credentials, else the AMQP URL's), or `amqpHost`'s host on port 15672. */
function managementNode(amqpHost: string, explicit?: string): ManagementNode {
  const amqp = new URL(amqpHost);
  const vhost = amqp.pathname.length > 1 ? decodeURIComponent(amqp.pathname.slice(1)) : '/';
  const mgmt = new URL(explicit ?? `${amqp.protocol === 'amqps:' ? 'https' : 'http'}://${amqp.hostname}:15672`);
  const user = decodeURIComponent(mgmt.username || amqp.username || 'guest');
  const pass = decodeURIComponent(mgmt.password || amqp.password || 'guest');
  mgmt.username = '';
  mgmt.password = '';
  return { base: mgmt.toString().replace(/\/$/, ''), vhost, authorization: `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}` };
}

/**
 * The management API of each node to read depths from, in order: the comma-separated URLs of
 * KUEUER_RABBITMQ_MANAGEMENT_URL, or by default each node of the AMQP URL on port 15672.
 */
export function managementUrlsFor(amqpUrl: string, explicit?: string): ManagementNode[] {
  const hosts = amqpHostUrls(amqpUrl);
  if (explicit === undefined) return hosts.map((host) => managementNode(host));
  return explicit.split(',').map((url) => managementNode(hosts[0]!, url.trim()));
}

/** The first management node (`http://user:pass@host:15672` by default: the AMQP URL's first host and credentials on the management port). */
export function managementUrlFor(amqpUrl: string, explicit?: string): ManagementNode {
  return managementUrlsFor(amqpUrl, explicit)[0]!;
}

/** What to change when the management API cannot be read (the URL never carries credentials: managementUrlFor strips them). */
export const MANAGEMENT_FIX =
  "set KUEUER_RABBITMQ_MANAGEMENT_URL (in the broker Secret, or --rabbitmq-management-url) to RabbitMQ's management API, e.g. http://USER:PASS@HOST:15672";

/** Why a fetch of the management API at `base` failed (fetch's own message is only "fetch failed"), with the fix. */
export function managementUnreachable(base: string, err: unknown): string {
  const cause = (err as { cause?: unknown }).cause ?? err;
  return `RabbitMQ's management API at ${base} did not answer: ${describeNetworkCause(cause)}; ${MANAGEMENT_FIX}`;
}

/**
 * Reads depths from the first management node that answers, starting with the one that answered
 * last: a node that is down (refused, timed out, 5xx) sends the read to the next one.
 */
export class RabbitMqDepth implements QueueDepthReader {
  readonly kind = 'amqp';
  private readonly nodes: ManagementNode[];
  private preferred = 0;
  constructor(amqpUrl: string, managementUrl?: string) {
    this.nodes = managementUrlsFor(amqpUrl, managementUrl);
  }

  async read(queue: string): Promise<QueueDepth> {
    const failures: string[] = [];
    for (let i = 0; i < this.nodes.length; i++) {
      const index = (this.preferred + i) % this.nodes.length;
      const answer = await readFrom(this.nodes[index]!, queue);
      if (typeof answer === 'string') {
        failures.push(answer);
        continue;
      }
      this.preferred = index;
      return answer;
    }
    throw new KueuerError('KUEUER_ERR_BROKER_UNAVAILABLE', failures.join('; '));
  }

  async close(): Promise<void> {}
}

/** One node's depth of `queue`, or why it could not give it (with the fix). */
async function readFrom(node: ManagementNode, queue: string): Promise<QueueDepth | string> {
  const url = `${node.base}/api/queues/${encodeURIComponent(node.vhost)}/${encodeURIComponent(queue)}`;
  let res: Response;
  try {
    res = await fetch(url, { headers: { authorization: node.authorization }, signal: AbortSignal.timeout(5000) });
  } catch (err) {
    return managementUnreachable(node.base, err);
  }
  if (res.status === 404) return { backlog: 0 }; // not declared yet: nothing queued
  if (!res.ok) return `RabbitMQ management API answered ${res.status} for ${url}; ${MANAGEMENT_FIX}`;
  const body = (await res.json()) as { messages_ready?: number; messages_unacknowledged?: number };
  return { backlog: (body.messages_ready ?? 0) + (body.messages_unacknowledged ?? 0) };
}
