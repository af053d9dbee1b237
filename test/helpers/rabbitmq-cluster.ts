/**
 * The 3-node RabbitMQ cluster of scripts/rabbitmq-cluster.sh (started by the
 * global setup, `inject('amqpCluster')`) as a test drives it: its script's
 * commands (kill, revive, …) and its nodes' management APIs (on each node's
 * AMQP port + 20), read from this machine.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';

const script = join(import.meta.dirname, '..', '..', 'scripts', 'rabbitmq-cluster.sh');

/** `scripts/rabbitmq-cluster.sh ARGS…` (e.g. `kill 2`, `revive 2`); rejects when it fails. */
export const clusterCommand = (...args: string[]): Promise<unknown> => promisify(execFile)('bash', [script, ...args]);

/** The management API (host and port on this machine) of each node of `nodesUrl` (amqp://u:p@h:p1,h:p2,h:p3). */
export function managementOf(nodesUrl: string): Array<{ host: string; port: number }> {
  return nodesUrl
    .replace(/^amqp:\/\/[^@]*@/, '')
    .split(',')
    .map((h) => ({ host: h.split(':')[0]!, port: Number(h.split(':')[1]) + 20 }));
}

/** The management API's answer for `path` (after /api/), from the first node that answers. */
export async function clusterManagement<T>(nodesUrl: string, path: string): Promise<T> {
  for (const { host, port } of managementOf(nodesUrl)) {
    const res = await fetch(`http://${host}:${port}/api/${path}`, {
      headers: { authorization: `Basic ${Buffer.from('guest:guest').toString('base64')}` },
      signal: AbortSignal.timeout(3000),
    }).catch(() => null);
    if (res?.ok) return (await res.json()) as T;
  }
  throw new Error(`no node's management API answered ${path}`);
}

/** The node number (1-3) leading the quorum queue `name` (vhost /). */
export async function leaderNodeOf(name: string, nodesUrl: string): Promise<number> {
  const q = await clusterManagement<{ leader?: string; node?: string }>(nodesUrl, `queues/%2F/${encodeURIComponent(name)}`);
  const n = /kueuer-cluster(\d)-/.exec(q.leader ?? q.node ?? '')?.[1];
  if (!n) throw new Error(`no node named the leader of ${name}`);
  return Number(n);
}
