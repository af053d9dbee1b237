/**
 * Issue 21: a 3-node RabbitMQ cluster (scripts/dev/rabbitmq-cluster.sh, started once per run by the global
 * setup) behind HAProxy. A real sidecar (given the three nodes' addresses, so it connects to node 1 and
 * its first declare puts the request queue's leader there) and a real responder carry requests of
 * 100 ms from 20 clients; once N/3 are answered, the row's fault happens:
 * - queue leader: the node leading the request queue is SIGKILLed (the responder goes through HAProxy);
 * - responder's node: the responder is given the node addresses in reverse, so its connection and its
 *   reply inbox's leader are on node 3, which is SIGKILLed;
 * - responder's inbox leader: as the previous, but the inbox's leadership is first moved to node 2, so
 *   the SIGKILL takes only the inbox's leader, while clients are held: the responder's and the sidecar's
 *   connections and the request queue's leader live on;
 * - rolling restart: each node in turn, as an operator's upgrade (scripts/dev/rabbitmq-cluster.sh restart:
 *   wait for quorum + 1, drain, stop, start, wait until its quorum queue members are back), with the
 *   clients sending until the third node is back (so more than N requests).
 * Every request must get its own answer, and the app must never run a request twice without
 * x-kueuer-redelivered. Prints the slowest answer, the app calls and the longest gap between answers
 * after the fault began (the time to recover). The responder's --publish-timeout is 5 s, as
 * docs/rabbitmq.md advises for a cluster: a publish made while the queue elects a new leader is
 * confirmed only once it has one (1-3 s here), and the default 1 s answers 503 meanwhile.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { request } from '../helpers/http.js';
import { msgIs, spawnKueuer, type KueuerProcess } from '../helpers/processes.js';
import { uniqueQueue, waitFor } from '../helpers/stack.js';
import { RabbitMqDepth } from '../../shared/transport/amqp/depth.js';
import amqp from 'amqplib';
import { pino } from 'pino';
import { AmqpTransport } from '../../shared/transport/amqp/transport.js';
import { encodeResponse, type WireMessage } from '../../shared/envelope.js';
import { delay, startTestApp } from '../helpers/test-app.js';
import { holdClusterFaults } from '../helpers/rabbitmq-cluster.js';

const clusterScript = join(import.meta.dirname, '..', '..', 'scripts', 'dev', 'rabbitmq-cluster.sh');
const cluster = (...args: string[]): Promise<unknown> => promisify(execFile)('bash', [clusterScript, ...args]);
/** Requests per row (the kill comes after N/3 answers); docs/reliability.md reports KUEUER_CLUSTER_FAULT_N=1000. */
const N = Number(process.env.KUEUER_CLUSTER_FAULT_N ?? 300);
const CLIENTS = 20;
const APP_MS = 100;

/** The management API's answer for `path`, from the first node that answers. */
async function management<T>(nodesUrl: string, path: string): Promise<T> {
  const ports = nodesUrl
    .replace(/^amqp:\/\/[^@]*@/, '')
    .split(',')
    .map((h) => Number(h.split(':')[1]));
  for (const port of ports) {
    const res = await fetch(`http://127.0.0.1:${port + 20}/api/${path}`, {
      headers: { authorization: `Basic ${Buffer.from('guest:guest').toString('base64')}` },
      signal: AbortSignal.timeout(3000),
    }).catch(() => null);
    if (res?.ok) return (await res.json()) as T;
  }
  throw new Error(`no node's management API answered ${path}`);
}

/** Node number (1-3) leading the quorum queue `name`. */
async function leaderOf(name: string, nodesUrl: string): Promise<number> {
  const q = await management<{ leader?: string; node?: string }>(nodesUrl, `queues/%2F/${encodeURIComponent(name)}`);
  const n = /kueuer-cluster(\d)-/.exec(q.leader ?? q.node ?? '')?.[1];
  if (!n) throw new Error(`no node named the leader of ${name}`);
  return Number(n);
}

/** The name of the responder's reply inbox for `queue`. */
async function inboxOf(queue: string, nodesUrl: string): Promise<string> {
  const all = await management<Array<{ name: string }>>(nodesUrl, 'queues/%2F?columns=name');
  const inbox = all.find((q) => q.name.startsWith(`kueuer.reply.${queue}.`));
  if (!inbox) throw new Error(`no reply inbox for ${queue}`);
  return inbox.name;
}

function countBy(keys: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const k of keys) counts[k] = (counts[k] ?? 0) + 1;
  return counts;
}

type Row = 'queue leader' | "responder's node" | "responder's inbox leader" | 'rolling restart';

/** What a row does once N/3 are answered, what it reports, and how it leaves the cluster whole for the next row. */
interface Fault {
  what: string;
  run: () => Promise<unknown>;
  heal: () => Promise<unknown>;
}

async function faultFor(row: Row, queue: string, nodes: string): Promise<Fault> {
  const kill = (n: number, what: string): Fault => ({
    what: `${what} (node ${n}) SIGKILLed`,
    run: () => cluster('kill', String(n)),
    // The next row needs all three nodes: a quorum queue without a majority takes nothing.
    heal: () => cluster('revive', String(n)),
  });
  switch (row) {
    case 'queue leader':
      return kill(await leaderOf(queue, nodes), row);
    case "responder's node":
      // Its inbox's leader is where it declared it: on its connection's node.
      return kill(await leaderOf(await inboxOf(queue, nodes), nodes), row);
    case "responder's inbox leader": {
      const inbox = await inboxOf(queue, nodes);
      const spared = new Set([await leaderOf(inbox, nodes), await leaderOf(queue, nodes)]);
      const target = [1, 2, 3].find((n) => !spared.has(n))!;
      await cluster('move-leader', inbox, String(target));
      await waitFor(async () => (await leaderOf(inbox, nodes)) === target, 30_000, `node ${target} to lead the inbox`);
      return kill(target, row);
    }
    case 'rolling restart':
      return {
        what: 'rolling restart of nodes 1, 2, 3',
        run: async () => {
          for (const n of [1, 2, 3]) await cluster('restart', String(n));
        },
        heal: () => cluster('start'),
      };
  }
}

// test/node/replicated-node.test.ts kills the same cluster's nodes: never both at once.
let releaseFaults: (() => void) | undefined;
beforeAll(async () => void (releaseFaults = await holdClusterFaults()), 30 * 60_000);
afterAll(() => releaseFaults?.());

describe('replicated RabbitMQ: a node lost under load', () => {
  const started: KueuerProcess[] = [];
  afterAll(() => {
    for (const p of started) p.child.kill('SIGKILL');
  });

  it.each<Row>(['queue leader', "responder's node", "responder's inbox leader", 'rolling restart'])(
    '%s: answers every request exactly, with no unflagged rerun',
    { timeout: 900_000 },
    async (row) => {
      const { lb, nodes } = inject('amqpCluster');
      if (!lb) throw new Error('the global setup started no RabbitMQ cluster for this run');
      const app = await startTestApp();
      const calls = new Map<string, Array<string | undefined>>();
      app.handle((req, res) => {
        const token = req.body.toString();
        calls.set(token, [...(calls.get(token) ?? []), req.headers['x-kueuer-redelivered'] as string | undefined]);
        setTimeout(() => res.end(`answer:${token}`), APP_MS);
      });
      const queue = uniqueQueue('replicated');
      const sidecar = spawnKueuer([
        'sidecar',
        '--app',
        `127.0.0.1:${app.port}`,
        '--admin-listen',
        '127.0.0.1:0',
        '--backend',
        nodes,
        '--queue',
        queue,
        '--concurrency',
        '10',
      ]);
      started.push(sidecar);
      await sidecar.waitForLog(msgIs('sidecar ready'), 30_000);
      const reversed = nodes.replace(/@(.*)$/, (_, hosts: string) => `@${hosts.split(',').reverse().join(',')}`);
      const backend = row === 'queue leader' || row === 'rolling restart' ? lb : reversed;
      const responder = spawnKueuer([
        'responder',
        ...['--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--backend', backend, '--queue', queue],
        ...['--timeout', '60s', '--publish-timeout', '5s'],
      ]);
      started.push(responder);
      const ready = await responder.waitForLog(msgIs('responder ready'), 30_000);
      await waitFor(async () => (await request(`http://${ready.admin}`, { path: '/readyz' })).status === 200, 30_000, 'responder ready');
      const url = `http://${ready.listen}`;

      // A Kueuer process that exits mid-row is a finding of its own: say so with its last words, not as 200 deadlines.
      let ending = false;
      const deaths: string[] = [];
      for (const [name, proc] of [
        ['sidecar', sidecar],
        ['responder', responder],
      ] as const) {
        void proc.exited.then(({ code, signal }) => {
          if (ending) return;
          const last = proc.logs.slice(-8).map((l) => `${String(l.time ?? '')} ${String(l.msg)} ${l.err === undefined ? '' : String(l.err)}`);
          deaths.push(
            `the ${name} exited (code ${code}, signal ${signal}) at ${Date.now()}; stderr ${proc.stderr.slice(-5).join(' | ')}; last logs: ${last.join(' | ')}`,
          );
          console.log(deaths.at(-1));
        });
      }
      const fault = await faultFor(row, queue, nodes);
      const results: Array<{ token: string; status: number; body: string; ms: number; at: number }> = [];
      let faultAt = 0;
      let faultMs = 0;
      let faultDone: Promise<unknown> | null = null;
      let next = 0;
      const client = async (): Promise<void> => {
        while ((next < N || (faultDone && !faultMs)) && deaths.length === 0) {
          const token = `req-${next++}`;
          const sent = Date.now();
          const res = await request(url, { method: 'POST', path: '/work', body: token }).catch((err: Error) => ({ status: 0, body: Buffer.from(err.message) }));
          results.push({ token, status: res.status, body: res.body.toString(), ms: Date.now() - sent, at: Date.now() });
          if (!faultDone && results.length >= N / 3) {
            faultAt = Date.now();
            faultDone = fault.run().then(() => (faultMs = Date.now() - faultAt));
          }
        }
      };
      try {
        await Promise.all(Array.from({ length: CLIENTS }, client));
        await faultDone;
        await delay(500);
      } finally {
        ending = true;
        for (const p of started.splice(0)) p.child.kill('SIGKILL');
        await app.close();
        if (faultDone) await fault.heal();
      }

      const warnings = (proc: KueuerProcess): Record<string, number> =>
        countBy(proc.logs.filter((l) => Number(l.level) >= 40).map((l) => String(l.msg).slice(0, 80)));
      console.log(`warnings: responder ${JSON.stringify(warnings(responder))}; sidecar ${JSON.stringify(warnings(sidecar))}`);
      const wrong = results.filter((r) => r.status !== 200 || r.body !== `answer:${r.token}`);
      const unflaggedReruns = [...calls.entries()].filter(([, flags]) => flags.slice(1).some((f) => f !== 'true'));
      const afterFault = results.filter((r) => r.at >= faultAt).sort((a, b) => a.at - b.at);
      let stallMs = afterFault.length ? afterFault[0]!.at - faultAt : 0;
      for (let i = 1; i < afterFault.length; i++) stallMs = Math.max(stallMs, afterFault[i]!.at - afterFault[i - 1]!.at);
      const latencies = results.map((r) => r.ms).sort((a, b) => a - b);
      const slowest = latencies.at(-1) ?? 0;
      const percentile = (p: number): number => latencies[Math.min(latencies.length - 1, Math.floor((latencies.length * p) / 100))] ?? 0;
      const appCalls = [...calls.values()].reduce((n, f) => n + f.length, 0);
      const sent = next;
      console.log(
        `replicated RabbitMQ, ${fault.what} after ${Math.ceil(N / 3)} answers (took ${faultMs} ms): ${results.length - wrong.length}/${sent} answered exactly, ` +
          `${wrong.length} lost or wrong (statuses ${JSON.stringify(countBy(wrong.map((r) => String(r.status))))}), app calls ${appCalls} ` +
          `(${appCalls - calls.size} reruns, all flagged: ${unflaggedReruns.length === 0}), p50 ${percentile(50)} ms, p99 ${percentile(99)} ms, slowest answer ${slowest} ms, longest gap after the fault ${stallMs} ms`,
      );
      expect(deaths).toEqual([]);
      expect(wrong.slice(0, 5)).toEqual([]);
      expect(results).toHaveLength(sent);
      expect(sent).toBeGreaterThanOrEqual(N);
      expect(unflaggedReruns).toEqual([]);
    },
  );
});

describe("replicated RabbitMQ: the autoscaler's queue depth with a node down", () => {
  it('reads it from the next management node when the first is SIGKILLed', { timeout: 300_000 }, async () => {
    const { nodes } = inject('amqpCluster');
    if (!nodes) throw new Error('the global setup started no RabbitMQ cluster for this run');
    const queue = uniqueQueue('depth');
    // Three requests waiting in a quorum queue whose leader is node 2 (declared through it), so it keeps a majority without node 1.
    const conn = await amqp.connect(nodes.split(',')[0]!.replace(/@[^/]*$/, `@${nodes.split(',')[1]}`));
    const ch = await conn.createConfirmChannel();
    await ch.assertQueue(queue, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
    for (let i = 0; i < 3; i++) ch.sendToQueue(queue, Buffer.from(String(i)), { persistent: true });
    await ch.waitForConfirms();
    await conn.close();
    const managementUrls = nodes
      .replace(/^amqp:\/\/[^@]*@/, '')
      .split(',')
      .map((h) => `http://guest:guest@127.0.0.1:${Number(h.split(':')[1]) + 20}`)
      .join(',');
    const depth = new RabbitMqDepth(nodes, managementUrls);
    // The management API's counts lag by its statistics interval (1 s here).
    await waitFor(async () => (await depth.read(queue)).backlog === 3, 30_000, 'node 1 to count the three requests');
    await cluster('kill', '1');
    try {
      expect(await depth.read(queue)).toEqual({ backlog: 3 });
    } finally {
      await cluster('revive', '1');
    }
  });
});

describe("replicated RabbitMQ: a sidecar's first reply to an inbox whose leader's node just died", () => {
  it('is retried on a new channel and confirmed once the inbox has a new leader, not nacked for good', { timeout: 300_000 }, async () => {
    const { nodes } = inject('amqpCluster');
    if (!nodes) throw new Error('the global setup started no RabbitMQ cluster for this run');
    const hosts = nodes.replace(/^amqp:\/\/[^@]*@/, '').split(',');
    const on = (n: number): string => nodes.replace(/@.*$/, `@${hosts[n - 1]}`);
    const log = pino({ level: 'silent' });
    // The responder's inbox, consumed through node 2, led by node 3.
    const consumer = await AmqpTransport.connect(on(2), log);
    const got: string[] = [];
    const inbox = await consumer.openReplyInbox(uniqueQueue('sticky'), (m) => got.push(m.body.toString()));
    await cluster('move-leader', inbox.address, '3');
    await waitFor(async () => (await leaderOf(inbox.address, nodes)) === 3, 30_000, 'node 3 to lead the inbox');
    // The sidecar, on node 1, has never published to this inbox.
    const sidecar = await AmqpTransport.connect(on(1), log);
    const reply = (n: number): WireMessage =>
      encodeResponse({ id: n.toString(16).padStart(32, '0'), queue: 'q', status: 200, headers: [], body: Buffer.from(String(n)) });
    await cluster('kill', '3');
    try {
      // Its first publish comes while the leader's node is down: nacked (or confirmed, if the new leader was already known).
      const first = await sidecar.publishReply(inbox.address, reply(1), { timeoutMs: 5000 }).then(
        () => 'confirmed',
        (err: Error) => err.message,
      );
      // Retried as the sidecar's worker does: within seconds each later publish must be confirmed.
      const outcomes: string[] = [];
      await waitFor(
        async () => {
          const r = await sidecar.publishReply(inbox.address, reply(2), { timeoutMs: 5000 }).then(
            () => 'confirmed',
            (err: Error) => err.message,
          );
          outcomes.push(r);
          return r === 'confirmed';
        },
        20_000,
        'a reply confirmed',
        { intervalMs: 500 },
      );
      console.log(`first reply: ${first}; then: ${outcomes.join(', ')}`);
      await expect.poll(() => got.includes('2'), { timeout: 10_000 }).toBe(true);
    } finally {
      await sidecar.close().catch(() => undefined);
      await consumer.close().catch(() => undefined);
      await cluster('revive', '3');
    }
  });
});
