/**
 * Fault rows on three replicated Kafka brokers (scripts/dev/kafka-cluster.sh,
 * started once by test/global-setup.ts): N requests of 100 ms through real
 * `kueuer responder` and `kueuer sidecar` processes, and once a third are
 * answered, a broker goes: the one leading most of the request topic's
 * partitions (SIGKILL, or a restart with its data kept), the one leading the
 * responder's reply partition (SIGKILL), the coordinator of the responder's
 * reply inbox group (SIGKILL: kafkajs kept a dead coordinator, see
 * shared/transport/kafka/coordinator-guard.ts), the group and transaction
 * coordinator of transactional sidecars (SIGKILL), or all three one after the
 * other (an operator's rolling upgrade: stop, start with data kept, wait until
 * every replica is in sync, next), with load kept up until the last is back.
 * Every client must get its own answer (0 lost, 0 wrong), and the app may get
 * a request twice only with x-kueuer-redelivered. The slowest answer, the app
 * calls and the longest stall after the fault are printed.
 */
import { execFile, execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { META } from '../../shared/envelope.js';
import { retry } from '../../shared/retry.js';
import { consumerGroup, isInboxTopic, requestTopic } from '../../shared/transport/kafka/config.js';
import {
  coordinatorPartition,
  fenceTransactionalId,
  kafkaClient,
  partitionLeaders,
  readCommitted,
  topicsWithPrefix,
  waitForBrokers,
  waitInSync,
} from '../helpers/kafka.js';
import { msgIs, spawnKueuer, type KueuerProcess } from '../helpers/processes.js';
import { uniqueQueue } from '../helpers/stack.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';

// `npm test`: 300 per row (the file takes a few minutes); `npm run test:faults` sets KUEUER_FAULT_N=1000.
const N = Number(process.env.KUEUER_CLUSTER_FAULT_N ?? process.env.KUEUER_FAULT_N ?? 300);
const clusterUrl = inject('kafkaClusterUrl');
const kafka = kafkaClient(clusterUrl);
const script = join(import.meta.dirname, '..', '..', 'scripts', 'dev', 'kafka-cluster.sh');
const cluster = (...args: string[]) => execFileSync('bash', [script, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
/** During a row: the test's own clients keep running while a broker stops and starts. */
const clusterAsync = async (...args: string[]) => void (await promisify(execFile)('bash', [script, ...args], { encoding: 'utf8' }));

type Fault =
  | 'request leader SIGKILL'
  | 'request leader restart (data kept)'
  | 'reply leader SIGKILL'
  | 'reply inbox coordinator SIGKILL'
  | 'transaction coordinator SIGKILL (transactional)'
  | 'rolling restart';

/** The broker leading most partitions of the leaders given. */
const busiest = (leaders: number[]): number => {
  const count = new Map<number, number>();
  for (const l of leaders) count.set(l, (count.get(l) ?? 0) + 1);
  return [...count].sort((a, b) => b[1] - a[1])[0]![0];
};

/**
 * From the kill on, polls the topics' metadata every 200 ms and notes when (ms after `since()`)
 * the victim was first out of every ISR (the controller fenced it) and when it first led none of
 * their partitions (the new leaders were elected), as a client sees the cluster: the broker's part
 * of a failover, next to the row's stall.
 */
function watchFailover(topics: string[], victim: () => number | undefined, since: () => number) {
  const admin = kafka.admin();
  let stopped = false;
  const seen: { fencedMs?: number; electedMs?: number } = {};
  const done = (async () => {
    await admin.connect();
    while (!stopped && (seen.fencedMs === undefined || seen.electedMs === undefined)) {
      const v = victim();
      if (v !== undefined) {
        const meta = await Promise.race([admin.fetchTopicMetadata({ topics }).catch(() => null), new Promise<null>((r) => setTimeout(() => r(null), 1000))]);
        if (meta) {
          const partitions = meta.topics.flatMap((t) => t.partitions);
          const at = Date.now() - since();
          if (seen.fencedMs === undefined && partitions.every((p) => !p.isr.includes(v))) seen.fencedMs = at;
          if (seen.electedMs === undefined && partitions.every((p) => p.leader !== v)) seen.electedMs = at;
        }
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  })().catch(() => undefined);
  return {
    seen,
    stop: async () => {
      stopped = true;
      await done;
      await admin.disconnect().catch(() => undefined);
    },
  };
}

interface Outcome {
  status: number | string;
  body: string;
  sentAt: number;
  doneAt: number;
}

function get(agent: http.Agent, url: string): Promise<{ status: number | string; body: string }> {
  return new Promise((resolve) => {
    const req = http.get(url, { agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      res.on('error', (e) => resolve({ status: `error ${e.message}`, body: '' }));
    });
    req.on('error', (e) => resolve({ status: `error ${(e as NodeJS.ErrnoException).code ?? e.message}`, body: '' }));
  });
}

/**
 * Transactional ids, one per sidecar, whose transaction coordinator is the broker coordinating the
 * queue's consumer group: one SIGKILL then takes both coordinators.
 */
async function transactionalIdsOnGroupCoordinator(queue: string, count: number): Promise<{ ids: string[]; coordinator: number }> {
  await fenceTransactionalId(kafka, 'kueuer-test-warmup'); // creates __transaction_state on a fresh cluster
  // Every broker knows the new internal topic a moment later.
  const leaders = await retry(() => partitionLeaders(kafka, ['__consumer_offsets', '__transaction_state']), { until: Date.now() + 30_000 });
  const offsets = leaders.get('__consumer_offsets')!;
  const txState = leaders.get('__transaction_state')!;
  const coordinator = offsets[coordinatorPartition(consumerGroup(queue), offsets.length)]!;
  const ids: string[] = [];
  for (let k = 0; ids.length < count; k++) {
    const id = `${queue}.tx.${k}`;
    if (txState[coordinatorPartition(id, txState.length)] === coordinator) ids.push(id);
  }
  return { ids, coordinator };
}

describe('fault rows on three Kafka brokers', () => {
  const started: KueuerProcess[] = [];
  let app: TestApp | undefined;
  afterEach(async () => {
    for (const p of started.splice(0)) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    await app?.close();
    // Whatever a row took down comes back with its data, for the next row and file.
    cluster('start');
    await waitForBrokers(clusterUrl, 3, 120_000);
  });

  async function run(fault: Fault) {
    const queue = uniqueQueue('kcluster');
    app = await startTestApp();
    /** Per path: whether each call, in arrival order, carried x-kueuer-redelivered. */
    const calls = new Map<string, boolean[]>();
    app.handle((req, res) => {
      calls.set(req.url, [...(calls.get(req.url) ?? []), req.headers['x-kueuer-redelivered'] === 'true']);
      setTimeout(() => res.end(`done ${req.url}`), 100);
    });
    const common = ['--backend', clusterUrl, '--queue', queue, '--admin-listen', '127.0.0.1:0', '--kafka-partitions', '6'];
    const transactional = fault.includes('transactional') ? await transactionalIdsOnGroupCoordinator(queue, 2) : null;
    const front = spawnKueuer(['responder', '--listen', '127.0.0.1:0', '--timeout', '90s', '--max-pending', '5000', ...common], {
      KUEUER_LOG_LEVEL: 'info',
    });
    started.push(front);
    const url = `http://${(await front.waitForLog(msgIs('responder ready'), 60_000)).listen as string}`;
    for (let i = 0; i < 2; i++) {
      const tx = transactional ? ['--delivery', 'transactional', '--kafka-transactional-id', transactional.ids[i]!] : [];
      const s = spawnKueuer(['sidecar', '--app', `127.0.0.1:${app.port}`, '--concurrency', '16', ...tx, ...common], { KUEUER_LOG_LEVEL: 'info' });
      started.push(s);
      await s.waitForLog(msgIs('sidecar ready'), 60_000);
    }
    await new Promise((r) => setTimeout(r, 3000)); // both sidecars in the group before load
    const [replyTopic] = (await topicsWithPrefix(kafka, `kueuer.reply.${queue}.`)).filter(isInboxTopic);

    let killedAt = 0;
    let coordinators: number[] = [];
    let faultDone = false;
    const victims: number[] = [];
    let injected: Promise<void> | null = null;
    const watch =
      fault === 'rolling restart'
        ? null
        : watchFailover(
            [requestTopic(queue), replyTopic!, '__consumer_offsets'],
            () => victims[0],
            () => killedAt,
          );
    const injectFault = async () => {
      killedAt = Date.now();
      if (fault === 'rolling restart') {
        for (const node of [1, 2, 3]) {
          victims.push(node);
          await clusterAsync('kill', String(node), 'TERM');
          await clusterAsync('start');
          await waitForBrokers(clusterUrl, 3, 120_000);
          await waitInSync(kafka, [requestTopic(queue), replyTopic!, '__consumer_offsets'], 120_000);
        }
      } else {
        const leaders = await partitionLeaders(kafka, [requestTopic(queue), replyTopic!, '__consumer_offsets']);
        const offsets = leaders.get('__consumer_offsets')!;
        // Which brokers coordinate the groups (the sidecars', the responder's inbox): a coordinator's death costs a rejoin.
        coordinators = [consumerGroup(queue), replyTopic!].map((g) => offsets[coordinatorPartition(g, offsets.length)]!);
        const victim =
          fault === 'reply leader SIGKILL'
            ? leaders.get(replyTopic!)![0]!
            : fault === 'reply inbox coordinator SIGKILL'
              ? coordinators[1]!
              : transactional
                ? transactional.coordinator
                : busiest(leaders.get(requestTopic(queue))!);
        victims.push(victim);
        killedAt = Date.now();
        await clusterAsync('kill', String(victim), fault === 'request leader restart (data kept)' ? 'TERM' : 'KILL');
        if (fault === 'request leader restart (data kept)') await clusterAsync('start');
      }
      faultDone = true;
    };
    const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
    const outcomes: Outcome[] = [];
    let next = 0;
    let answered = 0;
    // A rolling restart outlasts N requests: the load goes on, lighter (10 clients, 250 ms apart), until the last broker is back.
    const more = (c: number) => next < N || (fault === 'rolling restart' && !faultDone && c < 10);
    const client = async (_: unknown, c: number) => {
      while (more(c)) {
        if (next >= N) await new Promise((r) => setTimeout(r, 250));
        const i = next++;
        const sentAt = Date.now();
        const r = await get(agent, `${url}/r/${i}`);
        outcomes[i] = { ...r, sentAt, doneAt: Date.now() };
        if (++answered === Math.floor(N / 3)) injected = injectFault();
      }
    };
    await Promise.all(Array.from({ length: 50 }, client));
    await injected;
    agent.destroy();
    await watch?.stop();

    const lost = outcomes.flatMap((o, i) => (o.status === 200 ? [] : [`${i}: ${o.status} ${o.body.slice(0, 120)}`]));
    const wrong = outcomes.filter((o, i) => o.status === 200 && o.body !== `done /r/${i}`).length;
    const reruns = [...calls].filter(([, flags]) => flags.length > 1).map(([path]) => path);
    // A call after a request's first that does not say it may be a rerun.
    const unflagged = [...calls].filter(([, flags]) => flags.slice(1).some((f) => !f)).map(([path]) => path);
    const slowestMs = Math.max(...outcomes.map((o) => o.doneAt - o.sentAt));
    const after = outcomes
      .map((o) => o.doneAt)
      .filter((t) => t >= killedAt)
      .sort((a, b) => a - b);
    const stallMs = after.reduce((worst, t, k) => Math.max(worst, t - (k === 0 ? killedAt : after[k - 1]!)), 0);
    // Replies the responder read after their client had its answer: a rerun's second reply, or replies read again.
    const late = front.logs.filter(msgIs('dropped a late reply: its client was already answered or gone')).length;
    console.log(
      `kafka cluster/${fault}: broker ${victims.join(', ')} of 3; ${outcomes.length} sent, ${outcomes.length - lost.length - wrong} answered right, ` +
        `${lost.length} lost, ${wrong} wrong, ${[...calls.values()].reduce((a, b) => a + b.length, 0)} app calls, ` +
        `${reruns.length} reruns (${unflagged.length} unflagged); slowest answer ${slowestMs} ms; ` +
        `longest stall after the fault ${stallMs} ms; ${late} late replies` +
        (watch ? `; broker ${victims[0]} out of every ISR at +${watch.seen.fencedMs ?? '?'} ms, leading nothing at +${watch.seen.electedMs ?? '?'} ms` : '') +
        (coordinators.length ? `; group coordinators: sidecars' broker ${coordinators[0]}, reply inbox's broker ${coordinators[1]}` : '') +
        `${lost.length ? `; lost: ${lost.slice(0, 5).join('; ')}` : ''}`,
    );
    // KUEUER_CLUSTER_FAULT_LOGS=DIR keeps every process's whole log (JSON lines), to study a failed row.
    const keep = process.env.KUEUER_CLUSTER_FAULT_LOGS;
    if (keep)
      started.forEach((p, k) =>
        writeFileSync(
          join(keep, `${fault.replace(/\W+/g, '-')}-${k}.jsonl`),
          p.logs.map((l) => `${(l.time as number) - killedAt} ${JSON.stringify(l)}`).join('\n'),
        ),
      );
    if (lost.length) {
      // Where each lost request got to: written to the request topic (how many copies), and how often the app saw it.
      const records = await readCommitted(kafka, [requestTopic(queue)]);
      console.log(`the request topic holds ${records.length} records`);
      for (const line of lost.slice(0, 20)) {
        const path = `/r/${line.split(':')[0]!}`;
        const copies = records.filter((r) => r.meta[META.path] === path).map((r) => `p${r.partition}@${r.offset}`);
        console.log(`lost ${path}: in the request topic ${copies.length}x [${copies.join(' ')}], app calls ${calls.get(path)?.length ?? 0}`);
      }
    }
    // On a failure, what the processes warned about, in ms from the fault.
    if (lost.length || unflagged.length)
      for (const p of started)
        console.log(
          p.logs
            .filter((l) => (l.level as number) >= 40)
            .slice(0, 15)
            .map((l) => `${(l.time as number) - killedAt} ${JSON.stringify(l).slice(0, 400)}`)
            .join('\n'),
        );
    expect(killedAt).toBeGreaterThan(0);
    expect(lost).toEqual([]);
    expect(wrong).toBe(0);
    expect(unflagged).toEqual([]);
    for (const p of started) expect(p.child.exitCode, 'a Kueuer process exited').toBeNull();
  }

  it(`request topic's leader SIGKILLed under load: ${N} requests, none lost, no unflagged rerun`, { timeout: 300_000 }, () => run('request leader SIGKILL'));

  it(`request topic's leader restarted with its data kept, under load: ${N} requests, none lost, no unflagged rerun`, { timeout: 300_000 }, () =>
    run('request leader restart (data kept)'),
  );

  it(`the reply partition's leader SIGKILLed under load: ${N} requests, none lost, no unflagged rerun`, { timeout: 300_000 }, () =>
    run('reply leader SIGKILL'),
  );

  it(`the reply inbox's group coordinator SIGKILLed under load: ${N} requests, none lost, no unflagged rerun`, { timeout: 300_000 }, () =>
    run('reply inbox coordinator SIGKILL'),
  );

  it(`transactional sidecars, their group and transaction coordinator SIGKILLed under load: ${N} requests, none lost`, { timeout: 300_000 }, () =>
    run('transaction coordinator SIGKILL (transactional)'),
  );

  it(`rolling restart of all three brokers under load (stop, start, in sync, next): ${N}+ requests, none lost`, { timeout: 600_000 }, () =>
    run('rolling restart'),
  );
});
