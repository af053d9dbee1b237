/**
 * The 3-node RabbitMQ cluster of scripts/dev/rabbitmq-cluster.sh (started by the
 * global setup, `inject('amqpCluster')`) as a test drives it: its script's
 * commands (kill, revive, …) and its nodes' management APIs (on each node's
 * AMQP port + 20), read from this machine.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';

const script = join(import.meta.dirname, '..', '..', 'scripts', 'dev', 'rabbitmq-cluster.sh');

/** `scripts/dev/rabbitmq-cluster.sh ARGS…` (e.g. `kill 2`, `revive 2`); rejects when it fails. */
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

/** Held by a test file while it kills or restarts the cluster's nodes (see holdClusterFaults). */
const FAULT_LOCK = join(import.meta.dirname, '..', '..', '.cache', 'rabbitmq-cluster-faults.lock');

/**
 * Vitest runs files in parallel (one worker per core but one), and the files that kill the
 * shared cluster's nodes (test/faults/replicated-rabbitmq.test.ts, test/node/replicated-node.test.ts)
 * must not overlap: two nodes down leave no quorum. Waits (up to `waitMs`) until no live
 * process holds the lock, takes it (an exclusive create naming this process; a dead owner's
 * lock is taken over) and resolves the release.
 */
export async function holdClusterFaults(waitMs = 30 * 60_000): Promise<() => void> {
  mkdirSync(dirname(FAULT_LOCK), { recursive: true });
  const until = Date.now() + waitMs;
  for (;;) {
    try {
      writeFileSync(FAULT_LOCK, String(process.pid), { flag: 'wx' });
      return () => rmSync(FAULT_LOCK, { force: true });
    } catch {
      const owner = Number(readFileSync(FAULT_LOCK, { encoding: 'utf8', flag: 'a+' }));
      if (!Number.isInteger(owner) || owner <= 0 || !isAlive(owner)) rmSync(FAULT_LOCK, { force: true });
      else if (Date.now() > until) throw new Error(`process ${owner} still kills the RabbitMQ cluster's nodes after ${waitMs} ms (${FAULT_LOCK})`);
      else await new Promise((r) => setTimeout(r, 500));
    }
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
