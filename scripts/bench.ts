/**
 * `npm run bench`: the same closed-loop load against three paths, in one run:
 *   1. the app called directly (the baseline),
 *   2. `kueuer local` on the embedded backend,
 *   3. `kueuer responder` + `kueuer sidecar` on RabbitMQ (a private node),
 * at concurrency 1 and 64, first with an app that answers at once (Kueuer's
 * pure overhead), then at concurrency 64 with an app that takes 10 ms per
 * request. Prints req/s, p50 and p99 and each path's ratio to direct, and
 * writes them with the machine's description to docs/benchmarks.md.
 *
 * A fourth path runs the responder and sidecar on Kafka (a local KRaft broker).
 *
 * Env: BENCH_SECONDS (default 8 per measurement), BENCH_WARMUP_SECONDS (2).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Pool } from 'undici';
import { benchAdmission } from './bench-admission.js';

const root = join(import.meta.dirname, '..', '..');
const seconds = Number(process.env.BENCH_SECONDS ?? 8);
const warmupSeconds = Number(process.env.BENCH_WARMUP_SECONDS ?? 2);
const ports = {
  app: 18080,
  local: 18081,
  localAdmin: 18091,
  responder: 18082,
  responderAdmin: 18092,
  sidecarAdmin: 18093,
  kafkaResponder: 18083,
  kafkaResponderAdmin: 18094,
  kafkaSidecarAdmin: 18095,
};
const SLOW_APP_MS = 10;

interface Result {
  app: string;
  path: string;
  concurrency: number;
  requests: number;
  errors: number;
  rps: number;
  p50: number;
  p99: number;
}

const children: ChildProcess[] = [];
function start(args: string[], env: Record<string, string> = {}): ChildProcess {
  const child = spawn(process.execPath, args, { cwd: root, env: { ...process.env, KUEUER_LOG_LEVEL: 'warn', ...env }, stdio: ['ignore', 'ignore', 'inherit'] });
  children.push(child);
  return child;
}
function stopAll(): void {
  for (const c of children) c.kill('SIGKILL');
}
process.on('exit', stopAll);

async function waitHttp(url: string, timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      const res = await fetch(url);
      await res.arrayBuffer();
      if (res.status === 200) return;
    } catch {
      // not up yet
    }
    if (Date.now() > until) throw new Error(`${url} did not answer 200 within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** `concurrency` workers, each sending the next request when the last one is answered. */
async function load(origin: string, concurrency: number, durationS: number): Promise<Omit<Result, 'path' | 'app'>> {
  const pool = new Pool(origin, { connections: concurrency, pipelining: 1 });
  const latencies: number[] = [];
  let errors = 0;
  const body = JSON.stringify({ hello: 'kueuer', n: 42 });
  const until = performance.now() + durationS * 1000;
  const worker = async (): Promise<void> => {
    while (performance.now() < until) {
      const t0 = performance.now();
      try {
        const res = await pool.request({ method: 'POST', path: '/bench?x=1', body, headers: { 'content-type': 'application/json' } });
        await res.body.arrayBuffer();
        if (res.statusCode !== 200) errors++;
        else latencies.push(performance.now() - t0);
      } catch {
        errors++;
      }
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsed = (performance.now() - started) / 1000;
  await pool.close();
  latencies.sort((a, b) => a - b);
  const pct = (p: number): number => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? NaN;
  return { concurrency, requests: latencies.length, errors, rps: latencies.length / elapsed, p50: pct(0.5), p99: pct(0.99) };
}

async function measure(app: string, path: string, origin: string, concurrencies: number[]): Promise<Result[]> {
  const out: Result[] = [];
  for (const c of concurrencies) {
    await load(origin, c, warmupSeconds);
    const r = await load(origin, c, seconds);
    out.push({ app, path, ...r });
    console.log(
      `${app.padEnd(10)} ${path.padEnd(26)} c=${String(c).padEnd(3)} ${r.rps.toFixed(0).padStart(7)} req/s  p50 ${r.p50.toFixed(3)} ms  p99 ${r.p99.toFixed(3)} ms  errors ${r.errors}`,
    );
  }
  return out;
}

/** Starts the app and both Kueuer paths in front of it, measures all three, stops them. */
/** Kafka's JVM runs only while its own path is measured, so it takes no CPU from the others. */
function kafkaBroker(action: 'start' | 'stop'): string {
  return (
    execFileSync('bash', [join(root, 'scripts/kafka.sh'), action], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .pop() ?? ''
  );
}

/** `kueuer responder` and `kueuer sidecar` (concurrency 64) on one broker and queue, as in a cluster. */
function startBrokerPair(backend: string, queue: string, port: number, responderAdmin: number, sidecarAdmin: number): ChildProcess[] {
  const common = ['--backend', backend, '--queue', queue];
  return [
    start(['bin/kueuer.js', 'responder', '--listen', `127.0.0.1:${port}`, '--admin-listen', `127.0.0.1:${responderAdmin}`, ...common]),
    start(['bin/kueuer.js', 'sidecar', '--app', `127.0.0.1:${ports.app}`, '--admin-listen', `127.0.0.1:${sidecarAdmin}`, ...common, '--concurrency', '64']),
  ];
}

async function measureApp(label: string, delayMs: number, concurrencies: number[], amqpUrl: string): Promise<[Result[], Result[], Result[], Result[]]> {
  const local = `http://127.0.0.1:${ports.local}`;
  const front = `http://127.0.0.1:${ports.responder}`;
  const appUrl = `http://127.0.0.1:${ports.app}`;
  const started = [start(['dist/demo/echo-app.js', String(ports.app), String(delayMs), String(delayMs)])];
  await waitHttp(`${appUrl}/`);
  const queue = `bench-${Date.now()}`;
  started.push(
    start([
      'bin/kueuer.js',
      'local',
      '--listen',
      `127.0.0.1:${ports.local}`,
      '--admin-listen',
      `127.0.0.1:${ports.localAdmin}`,
      '--app',
      `127.0.0.1:${ports.app}`,
      '--concurrency',
      '64',
      '--queue',
      `${queue}-local`,
    ]),
    ...startBrokerPair(amqpUrl, queue, ports.responder, ports.responderAdmin, ports.sidecarAdmin),
  );
  await waitHttp(`${local}/ping`);
  await waitHttp(`http://127.0.0.1:${ports.responderAdmin}/readyz`);
  await waitHttp(`http://127.0.0.1:${ports.sidecarAdmin}/readyz`);
  await waitHttp(`${front}/ping`);
  const direct = await measure(label, 'direct (baseline)', appUrl, concurrencies);
  const embedded = await measure(label, 'kueuer local (memory)', local, concurrencies);
  const rabbit = await measure(label, 'responder+sidecar (amqp)', front, concurrencies);
  const kafkaUrl = `kafka://${kafkaBroker('start')}`;
  started.push(...startBrokerPair(kafkaUrl, queue, ports.kafkaResponder, ports.kafkaResponderAdmin, ports.kafkaSidecarAdmin));
  await waitHttp(`http://127.0.0.1:${ports.kafkaResponderAdmin}/readyz`, 60_000);
  await waitHttp(`http://127.0.0.1:${ports.kafkaSidecarAdmin}/readyz`, 60_000);
  await waitHttp(`http://127.0.0.1:${ports.kafkaResponder}/ping`, 60_000);
  const kafka = await measure(label, 'responder+sidecar (kafka)', `http://127.0.0.1:${ports.kafkaResponder}`, concurrencies);
  const results: [Result[], Result[], Result[], Result[]] = [direct, embedded, rabbit, kafka];
  for (const child of started) child.kill('SIGKILL');
  kafkaBroker('stop');
  await new Promise((r) => setTimeout(r, 300));
  return results;
}

function machine(): string {
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  let rabbit = 'unknown';
  try {
    rabbit = execFileSync('dpkg-query', ['-W', '-f=${Version}', 'rabbitmq-server'], { encoding: 'utf8' });
  } catch {
    // not from Debian
  }
  return `${cpus().length} × ${cpu}, ${(totalmem() / 1024 ** 3).toFixed(0)} GiB RAM, Node ${process.version}, RabbitMQ ${rabbit}, ${process.platform}`;
}

async function main(): Promise<void> {
  console.log('admission webhook, open-loop load:');
  const admission = await benchAdmission(root, seconds, children);

  const amqpUrl = execFileSync('bash', [join(root, 'scripts/rabbitmq.sh'), 'start'], { encoding: 'utf8' })
    .trim()
    .split('\n')
    .pop()!;
  console.log(`machine: ${machine()}\n${seconds} s per measurement after ${warmupSeconds} s warm-up\n`);
  kafkaBroker('stop'); // left running by a test run, it would load the other paths
  const [direct, local, rabbit, kafka] = await measureApp('0 ms app', 0, [1, 64], amqpUrl);
  const [slowDirect, slowLocal, slowRabbit, slowKafka] = await measureApp(`${SLOW_APP_MS} ms app`, SLOW_APP_MS, [64], amqpUrl);
  stopAll();

  const rows: string[] = [];
  const summary: string[] = [];
  for (const [results, baseline] of [
    [direct, direct],
    [local, direct],
    [rabbit, direct],
    [kafka, direct],
    [slowDirect, slowDirect],
    [slowLocal, slowDirect],
    [slowRabbit, slowDirect],
    [slowKafka, slowDirect],
  ] as const) {
    for (const r of results) {
      const base = baseline.find((d) => d.concurrency === r.concurrency)!;
      const ratio = r.rps / base.rps;
      const addedP50 = r.p50 - base.p50;
      rows.push(
        `| ${r.app} | ${r.path} | ${r.concurrency} | ${r.rps.toFixed(0)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${(ratio * 100).toFixed(1)}% | ${r === base ? '–' : `+${addedP50.toFixed(2)} ms`} | ${r.errors} |`,
      );
    }
  }
  const ratioAt = (rs: Result[], c: number, base: Result[] = direct): number =>
    rs.find((r) => r.concurrency === c)!.rps / base.find((r) => r.concurrency === c)!.rps;
  const addedAt1 = (rs: Result[]): number => rs.find((r) => r.concurrency === 1)!.p50 - direct.find((r) => r.concurrency === 1)!.p50;
  summary.push(
    `- With the 0 ms app at c=64: embedded ${(ratioAt(local, 64) * 100).toFixed(1)}% of direct throughput (target ≥ 50%), RabbitMQ ${(ratioAt(rabbit, 64) * 100).toFixed(1)}% (target ≥ 20%).`,
    `- Kafka at c=64: ${(ratioAt(kafka, 64) * 100).toFixed(1)}% of direct throughput with the 0 ms app.`,
    `- With a ${SLOW_APP_MS} ms app at c=64: embedded ${(ratioAt(slowLocal, 64, slowDirect) * 100).toFixed(1)}%, RabbitMQ ${(ratioAt(slowRabbit, 64, slowDirect) * 100).toFixed(1)}%, Kafka ${(ratioAt(slowKafka, 64, slowDirect) * 100).toFixed(1)}% of direct throughput.`,
    `- Added p50 at c=1: embedded +${addedAt1(local).toFixed(2)} ms (target ≤ 1 ms), RabbitMQ +${addedAt1(rabbit).toFixed(2)} ms (target ≤ 1.5 ms), Kafka +${addedAt1(kafka).toFixed(2)} ms (target ≤ 5 ms).`,
  );
  console.log(`\n${summary.join('\n')}`);

  const docPath = join(root, 'docs', 'benchmarks.md');
  const doc = readFileSync(docPath, 'utf8');
  const generated = [
    '<!-- bench:start (written by `npm run bench`; edit outside these markers) -->',
    `Run on ${new Date().toISOString().slice(0, 10)}: ${machine()}. ${seconds} s per measurement after a ${warmupSeconds} s warm-up.`,
    '',
    '| app | path | concurrency | req/s | p50 ms | p99 ms | throughput vs direct | added p50 | errors |',
    '|---|---|---|---|---|---|---|---|---|',
    ...rows,
    '',
    ...summary,
    '',
    '### Admission webhook',
    '',
    `Open-loop load of a Deployment pod's AdmissionReview over HTTPS (keep-alive), against the webhook's own /healthz on the same server as the baseline.`,
    '',
    ...admission,
    '<!-- bench:end -->',
  ].join('\n');
  writeFileSync(docPath, doc.replace(/<!-- bench:start[\s\S]*<!-- bench:end -->/, generated));
  console.log(`\nwrote ${docPath}`);
  execFileSync('bash', [join(root, 'scripts/rabbitmq.sh'), 'stop'], { stdio: 'inherit' });
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
