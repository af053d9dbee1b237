/**
 * The fault matrix: for each backend and each fault, N requests (N = 1,000 in
 * `npm run test:faults`, fewer in `npm test`) to an app that takes 50–500 ms,
 * through real `kueuer responder` and `kueuer sidecar` processes, with the
 * fault injected once a third of the answers are in. Every client's outcome
 * is counted; a client is lost when it gets anything but its own answer (or
 * the defined error of that fault). `npm run test:faults` writes the counts
 * to docs/reliability.md.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { deadLetterQueue } from '../../sidecar/worker.js';
import { msgIs, spawnKueuer, type KueuerProcess } from '../helpers/processes.js';
import { newTransport, uniqueQueue, waitFor } from '../helpers/stack.js';

const N = Number(process.env.KUEUER_FAULT_N ?? 60);
const report = process.env.KUEUER_FAULT_REPORT;
const root = join(import.meta.dirname, '..', '..');

type Backend = 'amqp' | 'kafka';
type Fault =
  | 'sidecar SIGKILL'
  | 'app crash and restart'
  | 'sidecar SIGTERM (drain)'
  | 'broker restart'
  | 'responder SIGTERM (drain)'
  | 'responder SIGKILL'
  | 'app hangs past the deadline'
  | 'poison request (500 every time)';

interface Row {
  backend: Backend;
  fault: Fault;
  sent: number;
  ok: number;
  expectedErrors: number;
  lost: number;
  wrongAnswer: number;
  appCalls: number;
  slowestMs: number;
  note: string;
}
const rows: Row[] = [];

/** An app whose process can "crash": every connection is cut and the port closed, then it listens again. */
class CrashableApp {
  private server!: http.Server;
  private readonly sockets = new Set<Socket>();
  port = 0;
  calls = 0;
  constructor(private readonly handler: (url: string, res: http.ServerResponse) => void) {}
  async start(port = 0): Promise<void> {
    this.server = http.createServer((req, res) => {
      this.calls++;
      req.resume();
      req.on('end', () => this.handler(req.url ?? '', res));
    });
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((r) => this.server.listen(port, '127.0.0.1', r));
    this.port = (this.server.address() as AddressInfo).port;
  }
  async crash(downMs: number): Promise<void> {
    const closed = new Promise<void>((r) => this.server.close(() => r()));
    for (const s of this.sockets) s.destroy();
    await closed;
    await new Promise((r) => setTimeout(r, downMs));
    await this.start(this.port);
  }
  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

/** The fault matrix's own RabbitMQ node, so restarting it disturbs no other test file. */
const faultBrokerPort = 27672;
function faultBroker(action: 'start' | 'stop', keepData = false): string {
  const env = {
    ...process.env,
    KUEUER_RABBITMQ_PORT: String(faultBrokerPort),
    KUEUER_RABBITMQ_DIR: join(root, '.cache', 'rabbitmq-faults'),
    ...(keepData ? { KUEUER_RABBITMQ_KEEP_DATA: '1' } : {}),
  };
  return execFileSync('bash', [join(root, 'scripts', 'dev', 'rabbitmq.sh'), action], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
    .trim()
    .split('\n')
    .pop()!;
}

async function runFault(backend: Backend, fault: Fault): Promise<Row> {
  const started: KueuerProcess[] = [];
  const queue = uniqueQueue('fault');
  let url = backend === 'amqp' ? inject('amqpUrl') : inject('kafkaUrl');
  if (fault === 'broker restart') url = faultBroker('start');
  const hangs = (i: number) => fault === 'app hangs past the deadline' && i % 10 === 5;
  const poison = (i: number) => fault === 'poison request (500 every time)' && i === 7;
  const app = new CrashableApp((path, res) => {
    const i = Number(path.split('/').pop());
    if (hangs(i)) return; // never answers
    setTimeout(
      () => {
        if (poison(i)) {
          res.statusCode = 500;
          res.end('poison');
        } else res.end(`done ${path}`);
      },
      50 + Math.random() * 450,
    );
  });
  await app.start();
  const timeout = fault === 'app hangs past the deadline' ? '4s' : '90s';
  const common = ['--backend', url, '--queue', queue, '--admin-listen', '127.0.0.1:0', ...(backend === 'kafka' ? ['--kafka-partitions', '4'] : [])];
  const responder = async () => {
    const p = spawnKueuer(['responder', '--listen', '127.0.0.1:0', '--timeout', timeout, '--max-pending', '5000', '--drain-timeout', '60s', ...common], {
      KUEUER_LOG_LEVEL: 'info',
    });
    started.push(p);
    const ready = await p.waitForLog(msgIs('responder ready'), 30_000);
    return { proc: p, url: `http://${ready.listen as string}` };
  };
  const sidecar = async () => {
    const p = spawnKueuer(['sidecar', '--app', `127.0.0.1:${app.port}`, '--concurrency', '16', '--retry-statuses', '500', '--max-attempts', '3', ...common], {
      KUEUER_LOG_LEVEL: 'info',
    });
    started.push(p);
    await p.waitForLog(msgIs('sidecar ready'), 30_000);
    return p;
  };
  try {
    const twoFronts = fault === 'responder SIGTERM (drain)' || fault === 'responder SIGKILL';
    const fronts = [await responder(), ...(twoFronts ? [await responder()] : [])];
    const s1 = await sidecar();
    await sidecar();
    if (backend === 'kafka') await new Promise((r) => setTimeout(r, 3000)); // both members in the group before load
    let terminatedFront = false;
    let answered = 0;
    let injected: Promise<unknown> | null = null;
    const injectFault = (): Promise<unknown> => {
      switch (fault) {
        case 'sidecar SIGKILL':
          s1.child.kill('SIGKILL');
          return sidecar();
        case 'sidecar SIGTERM (drain)':
          s1.child.kill('SIGTERM');
          return sidecar();
        case 'app crash and restart':
          return app.crash(1000);
        case 'broker restart':
          faultBroker('stop');
          return Promise.resolve(faultBroker('start', true));
        case 'responder SIGTERM (drain)':
          // The Service stops sending it new clients (endpoint removed); its held clients must still be answered.
          terminatedFront = true;
          fronts[0]!.proc.child.kill('SIGTERM');
          return Promise.resolve();
        case 'responder SIGKILL':
          // Its own held clients lose their connections, unavoidably; nobody else's may be lost.
          terminatedFront = true;
          fronts[0]!.proc.child.kill('SIGKILL');
          return Promise.resolve();
        default:
          return Promise.resolve();
      }
    };
    const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
    let next = 0;
    const outcomes: Array<{ status: number | string; body: string; ms: number; front: number }> = new Array(N);
    const client = async () => {
      while (next < N) {
        const i = next++;
        // While the broker restarts, the responder answers 503 + Retry-After; a client retries those, as it should.
        for (let attempt = 0; ; attempt++) {
          const frontIndex = fronts.length > 1 && (terminatedFront || i % 2 === 1) ? 1 : 0;
          const front = fronts[frontIndex]!;
          const t0 = Date.now();
          const r = await new Promise<{ status: number | string; body: string }>((resolve) => {
            const req = http.get(`${front.url}/r/${i}`, { agent }, (res) => {
              const chunks: Buffer[] = [];
              res.on('data', (c: Buffer) => chunks.push(c));
              res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
              res.on('error', (e) => resolve({ status: `error ${e.message}`, body: '' }));
            });
            req.on('error', (e) => resolve({ status: `error ${(e as NodeJS.ErrnoException).code ?? e.message}`, body: '' }));
          });
          if (r.status === 503 && fault === 'broker restart' && attempt < 60) {
            await new Promise((res) => setTimeout(res, 500));
            continue;
          }
          outcomes[i] = { ...r, ms: Date.now() - t0, front: frontIndex };
          break;
        }
        if (++answered === Math.floor(N / 3)) injected = injectFault();
      }
    };
    await Promise.all(Array.from({ length: 50 }, client));
    await injected;
    agent.destroy();

    let ok = 0;
    let expectedErrors = 0;
    let lost = 0;
    let wrongAnswer = 0;
    let cutByKill = 0;
    let slowestMs = 0;
    const lostDetail: string[] = [];
    outcomes.forEach((o, i) => {
      slowestMs = Math.max(slowestMs, o.ms);
      if (hangs(i)) {
        if (o.status === 504) expectedErrors++;
        else lost++;
      } else if (poison(i)) {
        if (o.status === 500 && o.body === 'poison') expectedErrors++;
        else lost++;
      } else if (o.status === 200 && o.body === `done /r/${i}`) ok++;
      else if (fault === 'responder SIGKILL' && o.front === 0 && String(o.status).startsWith('error')) cutByKill++;
      else if (o.status === 200) wrongAnswer++;
      else {
        lost++;
        if (lostDetail.length < 5) lostDetail.push(`${i}: ${o.status} ${o.body.slice(0, 100)}`);
      }
    });
    let note = '';
    if (fault === 'poison request (500 every time)') {
      // Exactly one copy of the poison request in the dead-letter queue.
      const reader = await newTransport(backend, url);
      let dead = 0;
      const consumer = await reader.consume(deadLetterQueue(queue), { concurrency: 4 }, async () => {
        dead++;
      });
      await waitFor(() => dead >= 1, 30_000, 'the dead-lettered request');
      await new Promise((r) => setTimeout(r, 1000));
      await consumer.stop();
      await reader.close();
      note = `${dead} dead-lettered after 3 calls`;
      expect(dead).toBe(1);
    }
    if (fault === 'app hangs past the deadline') note = `deadline 4 s; slowest answer ${(slowestMs / 1000).toFixed(1)} s`;
    if (fault === 'responder SIGKILL') {
      note = `${cutByKill} clients held by the killed responder lost their connection (counted as expected errors); the other responder's clients: none lost`;
      expectedErrors += cutByKill;
    }
    if (lostDetail.length) note += ` lost: ${lostDetail.join('; ')}`;
    const row = { backend, fault, sent: N, ok, expectedErrors, lost, wrongAnswer, appCalls: app.calls, slowestMs, note };
    // No process crashed: every Kueuer process we did not kill is still running.
    for (const p of started) {
      const killedByUs = p === s1 && (fault === 'sidecar SIGKILL' || fault === 'sidecar SIGTERM (drain)');
      const drained = (fault === 'responder SIGTERM (drain)' || fault === 'responder SIGKILL') && p === fronts[0]!.proc;
      if (!killedByUs && !drained) expect(p.child.exitCode, `a ${p === s1 ? 'sidecar' : 'process'} exited`).toBeNull();
    }
    if (fault === 'sidecar SIGTERM (drain)' || fault === 'responder SIGTERM (drain)') {
      const drainedProc = fault === 'sidecar SIGTERM (drain)' ? s1 : fronts[0]!.proc;
      await waitFor(() => drainedProc.child.exitCode !== null, 70_000, 'the drained process to exit');
      expect(drainedProc.child.exitCode).toBe(0);
    }
    return row;
  } finally {
    for (const p of started) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    await app.close();
    if (fault === 'broker restart') faultBroker('stop');
  }
}

const FAULTS: Fault[] = [
  'sidecar SIGKILL',
  'app crash and restart',
  'sidecar SIGTERM (drain)',
  'broker restart',
  'responder SIGTERM (drain)',
  'responder SIGKILL',
  'app hangs past the deadline',
  'poison request (500 every time)',
];
const NOT_RUN: Partial<Record<`${Backend}/${Fault}`, string>> = {
  'kafka/broker restart':
    'not run: scripts/dev/kafka.sh formats a fresh log dir on every start, so a restart with kept data needs a second, persistent Kafka node',
};

describe.each(['amqp', 'kafka'] as const)('fault matrix on %s', (backend) => {
  for (const fault of FAULTS) {
    if (NOT_RUN[`${backend}/${fault}`]) continue;
    it(`${fault}: ${N} requests, none lost, one answer each`, { timeout: 240_000 + N * 200 }, async () => {
      const row = await runFault(backend, fault);
      rows.push(row);
      expect(row.wrongAnswer).toBe(0);
      expect(row.lost, row.note).toBe(0);
      expect(row.ok + row.expectedErrors).toBe(N);
    });
  }
});

afterAll(() => {
  if (!report) return;
  const lines = [
    '# Reliability: the fault matrix',
    '',
    `Generated by \`npm run test:faults\` (test/faults/fault-matrix.test.ts) on ${new Date().toISOString().slice(0, 10)}, N = ${N} requests per row, app 50–500 ms per request,`,
    'two sidecars (concurrency 16 each), 50 concurrent clients; the fault is injected once a third of the answers are in.',
    '`npm test` runs the same matrix with N = 60.',
    '',
    '- **ok**: the client got its own answer (status 200 and its own body).',
    "- **expected errors**: the defined answer of that fault (504 for a hung request, the app's 500 for the poison request, a cut connection for a client held by a SIGKILLed responder).",
    "- **lost**: anything else (a connection error, an unexpected 502/503/504). **wrong answer**: someone else's body.",
    '- **app calls**: how often the app was called; more than sent means reruns (at-least-once) and retries.',
    '',
    '| backend | fault | sent | ok | expected errors | lost | wrong answer | app calls | slowest | note |',
    '|---|---|---|---|---|---|---|---|---|---|',
    ...rows.map(
      (r) =>
        `| ${r.backend} | ${r.fault} | ${r.sent} | ${r.ok} | ${r.expectedErrors} | ${r.lost} | ${r.wrongAnswer} | ${r.appCalls} | ${(r.slowestMs / 1000).toFixed(1)} s | ${r.note} |`,
    ),
    ...Object.entries(NOT_RUN).map(([k, why]) => `| ${k.split('/')[0]} | ${k.split('/')[1]} | – | – | – | – | – | – | – | ${why} |`),
    '',
  ];
  writeFileSync(report, lines.join('\n'));
});
