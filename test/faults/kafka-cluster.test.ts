/**
 * Fault rows on three replicated Kafka brokers (scripts/kafka-cluster.sh,
 * started once by test/global-setup.ts): N requests of 100 ms through real
 * `kueuer responder` and `kueuer sidecar` processes, and once a third are
 * answered, the broker leading most of the request topic's partitions is
 * SIGKILLed, or restarted with its data kept. Every client must get its own
 * answer (0 lost, 0 wrong), and no request may reach the app twice (Kafka
 * never sets x-kueuer-redelivered, so any second call is an unflagged rerun).
 * The slowest answer and the longest stall after the fault are printed.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { requestTopic } from '../../shared/transport/kafka/config.js';
import { kafkaClient, waitForBrokers } from '../helpers/kafka.js';
import { msgIs, spawnKueuer, type KueuerProcess } from '../helpers/processes.js';
import { uniqueQueue } from '../helpers/stack.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';

const N = Number(process.env.KUEUER_CLUSTER_FAULT_N ?? 300);
const clusterUrl = inject('kafkaClusterUrl');
const script = join(import.meta.dirname, '..', '..', 'scripts', 'kafka-cluster.sh');
const cluster = (...args: string[]) => execFileSync('bash', [script, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });

type Fault = 'request leader SIGKILL' | 'request leader restart (data kept)';

/** The broker leading most partitions of the topic. */
async function busiestLeader(topic: string): Promise<number> {
  const admin = kafkaClient(clusterUrl).admin();
  await admin.connect();
  try {
    const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
    const count = new Map<number, number>();
    for (const p of topics[0]!.partitions) count.set(p.leader, (count.get(p.leader) ?? 0) + 1);
    return [...count].sort((a, b) => b[1] - a[1])[0]![0];
  } finally {
    await admin.disconnect();
  }
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
    const front = spawnKueuer(['responder', '--listen', '127.0.0.1:0', '--timeout', '90s', '--max-pending', '5000', ...common], {
      KUEUER_LOG_LEVEL: 'info',
    });
    started.push(front);
    const url = `http://${(await front.waitForLog(msgIs('responder ready'), 60_000)).listen as string}`;
    for (let i = 0; i < 2; i++) {
      const s = spawnKueuer(['sidecar', '--app', `127.0.0.1:${app.port}`, '--concurrency', '16', ...common], { KUEUER_LOG_LEVEL: 'info' });
      started.push(s);
      await s.waitForLog(msgIs('sidecar ready'), 60_000);
    }
    await new Promise((r) => setTimeout(r, 3000)); // both sidecars in the group before load

    let killedAt = 0;
    let victim = 0;
    let injected: Promise<void> | null = null;
    const injectFault = async () => {
      victim = await busiestLeader(requestTopic(queue));
      killedAt = Date.now();
      if (fault === 'request leader SIGKILL') cluster('kill', String(victim));
      else {
        cluster('kill', String(victim), 'TERM');
        cluster('start');
      }
    };
    const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
    const outcomes: Outcome[] = new Array(N);
    let next = 0;
    let answered = 0;
    const client = async () => {
      while (next < N) {
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
    console.log(
      `kafka cluster/${fault}: broker ${victim} of 3; ${N} sent, ${N - lost.length - wrong} answered right, ${lost.length} lost, ${wrong} wrong, ` +
        `${[...calls.values()].reduce((a, b) => a + b.length, 0)} app calls, ${reruns.length} reruns (${unflagged.length} unflagged); slowest answer ${slowestMs} ms; ` +
        `longest stall after the fault ${stallMs} ms${lost.length ? `; lost: ${lost.slice(0, 5).join('; ')}` : ''}`,
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

  it(`request topic's leader SIGKILLed under load: ${N} requests, none lost, none run twice`, { timeout: 300_000 }, () => run('request leader SIGKILL'));

  it(`request topic's leader restarted with its data kept, under load: ${N} requests, none lost, none run twice`, { timeout: 300_000 }, () =>
    run('request leader restart (data kept)'),
  );
});
