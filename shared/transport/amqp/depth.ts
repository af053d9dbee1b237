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

/**
 * The management API's default port per AMQP scheme: RabbitMQ serves it over TLS on 15671 (and the
 * Cluster Operator's Service exposes 15671 beside amqps' 5671), plain HTTP on 15672.
 */
const MANAGEMENT_PORT = { 'amqp:': { scheme: 'http', port: 15672 }, 'amqps:': { scheme: 'https', port: 15671 } } as const;

/** One management node: `explicit` (its own credentials, else the AMQP URL's), or `amqpHost`'s host on 15672 (https on 15671 for amqps). */
function managementNode(amqpHost: string, explicit?: string): ManagementNode {
  const amqp = new URL(amqpHost);
  const vhost = amqp.pathname.length > 1 ? decodeURIComponent(amqp.pathname.slice(1)) : '/';
  const { scheme, port } = MANAGEMENT_PORT[amqp.protocol === 'amqps:' ? 'amqps:' : 'amqp:'];
  const mgmt = new URL(explicit ?? `${scheme}://${amqp.hostname}:${port}`);
  const user = decodeURIComponent(mgmt.username || amqp.username || 'guest');
  const pass = decodeURIComponent(mgmt.password || amqp.password || 'guest');
  mgmt.username = '';
  mgmt.password = '';
  return { base: mgmt.toString().replace(/\/$/, ''), vhost, authorization: `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}` };
}

/**
 * The management API of each node to read depths from, in order: the comma-separated URLs of
 * KUEUER_RABBITMQ_MANAGEMENT_URL, or by default each node of the AMQP URL on port 15672 (https on 15671 for amqps).
 */
export function managementUrlsFor(amqpUrl: string, explicit?: string): ManagementNode[] {
  const hosts = amqpHostUrls(amqpUrl);
  if (explicit === undefined) return hosts.map((host) => managementNode(host));
  return explicit.split(',').map((url) => managementNode(hosts[0]!, url.trim()));
}

/** The first management node (`http://user:pass@host:15672` by default, `https://…:15671` for amqps: the AMQP URL's first host and credentials on the management port). */
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

/** How long one node may take to give a depth (connect, headers and body; a 404's vhost check included). */
const NODE_TIMEOUT_MS = 5000;

/** RabbitMQ's own 404 body (a missing queue or vhost), as against a proxy's or another server's 404 page. */
const isRabbitNotFound = (body: unknown): boolean => (body as { error?: unknown } | undefined)?.error === 'Object Not Found';

const isDepth = (body: unknown): body is { messages_ready?: number; messages_unacknowledged?: number } =>
  typeof body === 'object' &&
  body !== null &&
  ['messages_ready', 'messages_unacknowledged'].every((k) => ['number', 'undefined'].includes(typeof (body as Record<string, unknown>)[k]));

/** The status and parsed JSON body (undefined when not JSON) of one GET, or why it failed; the body is read within `signal` too. */
async function getJson(node: ManagementNode, url: string, signal: AbortSignal): Promise<{ status: number; body: unknown } | string> {
  try {
    const res = await fetch(url, { headers: { authorization: node.authorization }, signal });
    const text = await res.text();
    try {
      return { status: res.status, body: JSON.parse(text) as unknown };
    } catch {
      return { status: res.status, body: undefined };
    }
  } catch (err) {
    return managementUnreachable(node.base, err);
  }
}

/**
 * One node's depth of `queue`, or why it could not give it (with the fix). A stalled body or a
 * non-JSON answer (a proxy, a login page) sends the read to the next node like a refused connection.
 * A 404 reads as 0 (not declared yet) only when it is RabbitMQ's and the vhost exists: a wrong URL
 * or vhost would otherwise read as an empty queue forever, and the autoscaler scale the pods away.
 */
async function readFrom(node: ManagementNode, queue: string): Promise<QueueDepth | string> {
  const signal = AbortSignal.timeout(NODE_TIMEOUT_MS);
  const url = `${node.base}/api/queues/${encodeURIComponent(node.vhost)}/${encodeURIComponent(queue)}`;
  const got = await getJson(node, url, signal);
  if (typeof got === 'string') return got;
  if (got.status === 404 && isRabbitNotFound(got.body)) {
    const vhost = await getJson(node, `${node.base}/api/vhosts/${encodeURIComponent(node.vhost)}`, signal);
    if (typeof vhost === 'string') return vhost;
    if (vhost.status === 200) return { backlog: 0 }; // not declared yet: nothing queued
    if (vhost.status === 404)
      return `vhost "${node.vhost}" does not exist on RabbitMQ at ${node.base}: fix the vhost of --backend (KUEUER_BACKEND) or ${MANAGEMENT_FIX}`;
    return `RabbitMQ management API answered ${vhost.status} for ${node.base}/api/vhosts/${encodeURIComponent(node.vhost)}; ${MANAGEMENT_FIX}`;
  }
  if (got.status !== 200) return `RabbitMQ management API answered ${got.status} for ${url}; ${MANAGEMENT_FIX}`;
  if (!isDepth(got.body)) return `${url} answered 200 with something that is not RabbitMQ's JSON (a proxy, or another server?); ${MANAGEMENT_FIX}`;
  return { backlog: (got.body.messages_ready ?? 0) + (got.body.messages_unacknowledged ?? 0) };
}
