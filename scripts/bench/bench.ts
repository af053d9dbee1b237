/**
 * `npm run bench`: the same closed-loop load against five paths in one run,
 * every process in one private network namespace (scripts/bench/bench-netns.ts):
 *   1. the app called directly (the baseline),
 *   2. Knative Serving's queue-proxy v0.50.0 in front of it (the peer),
 *   3. `kueuer local` on the embedded backend,
 *   4. `kueuer responder` + `kueuer sidecar` on RabbitMQ (a private node),
 *   5. the same pair on Kafka (a private KRaft broker),
 *   6-9. the same pair on three RabbitMQ nodes with quorum and with classic
 *      queues, and on three Kafka brokers with topics of RF 3 and of RF 1
 *      (what replication costs; issue 21),
 * at concurrency 1 and 64 with an app that answers at once (the proxy's pure
 * overhead), then at 64 with an app that takes 10 ms; each with wrk and with
 * an undici client. Each row has req/s, p50, p99, its ratio to direct and to
 * queue-proxy, and the µs of CPU per request of the processes on the path,
 * the broker and the app. Then: 10,000 clients held at once by one responder,
 * and the admission webhook's p99. Then asynchronous requests against
 * synchronous ones on the same `kueuer local` and app (scripts/bench/bench-async.ts).
 * Writes it all to docs/benchmarks.md.
 *
 * Env: BENCH_SECONDS (default 8 per measurement), BENCH_WARMUP_SECONDS (2),
 * BENCH_GENERATORS (wrk,undici), BENCH_PATHS (direct,queue-proxy,local,amqp,kafka,amqp-quorum,amqp-classic,kafka-rf3,kafka-rf1),
 * BENCH_HELD (10000; 0 skips), BENCH_ROWS (1; 0 skips the load rows), BENCH_ADMISSION (1; 0 skips), BENCH_ASYNC (1; 0 skips),
 * BENCH_WRITE_DOC (1; 0 only prints).
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { benchAdmission } from './bench-admission.js';
import { asyncTable, benchAsync, type AsyncRow } from './bench-async.js';
import { measureOnce, type Generator, type PathPids } from './bench-load.js';
import { Netns } from './bench-netns.js';
import { heldClientsLines, PATHS, REPLICATED_PATHS, replicationLines, table, targets, type HeldClients, type Row } from './bench-report.js';
import { BrokerNodes, measureHeldClients, startKueuer, waitHttp, type BrokerKind } from './bench-processes.js';

const root = join(import.meta.dirname, '..', '..', '..');
const timing = { seconds: Number(process.env.BENCH_SECONDS ?? 8), warmupSeconds: Number(process.env.BENCH_WARMUP_SECONDS ?? 2) };
const generators = (process.env.BENCH_GENERATORS ?? 'wrk,undici').split(',') as Generator[];
const pathIds = (process.env.BENCH_PATHS ?? 'direct,queue-proxy,local,amqp,kafka,amqp-quorum,amqp-classic,kafka-rf3,kafka-rf1').split(',');
const heldCount = Number(process.env.BENCH_HELD ?? 10_000);
const measureRows = process.env.BENCH_ROWS !== '0';

interface App {
  label: string;
  delayMs: number;
  port: number;
  concurrencies: number[];
  pid: number;
}

/** One path in front of one app: where to send the load and which processes are on it. */
interface Instance {
  origin: string;
  pids: PathPids;
  stop(): void;
}

interface PathDef {
  id: string;
  label: string;
  /** The broker it needs; kept running while the next path needs the same one. */
  broker?: BrokerKind;
  start(app: App): Promise<Instance>;
}

const children: ChildProcess[] = [];
const stopChildren = (list: ChildProcess[]): void => list.forEach((c) => c.kill('SIGKILL'));

function queueProxyBinary(): string {
  return execFileSync('bash', [join(root, 'scripts/bench/queue-proxy.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
    .trim()
    .split('\n')
    .pop()!;
}

function paths(netns: Netns, brokers: BrokerNodes): PathDef[] {
  const kueuer = (args: string[]): ChildProcess => startKueuer(netns, root, args);
  const pair = async (backend: string, app: App, port: number, options: string[] = []): Promise<Instance> => {
    const queue = `bench-${app.delayMs}ms-${Date.now()}`;
    const common = ['--backend', backend, '--queue', queue, ...options];
    const started = [
      kueuer(['responder', '--listen', `127.0.0.1:${port}`, '--admin-listen', `127.0.0.1:${port + 100}`, ...common]),
      kueuer(['sidecar', '--app', `127.0.0.1:${app.port}`, '--admin-listen', `127.0.0.1:${port + 200}`, ...common, '--concurrency', '64']),
    ];
    await waitHttp(netns, `http://127.0.0.1:${port + 100}/readyz`, 60_000);
    await waitHttp(netns, `http://127.0.0.1:${port + 200}/readyz`, 60_000);
    await waitHttp(netns, `http://127.0.0.1:${port}/ping`, 60_000);
    return {
      origin: `http://127.0.0.1:${port}`,
      pids: { proxy: started.map((c) => c.pid!), broker: brokers.pids(), app: [app.pid] },
      stop: () => stopChildren(started),
    };
  };
  return [
    {
      id: 'direct',
      label: PATHS.direct,
      start: async (app) => ({ origin: `http://127.0.0.1:${app.port}`, pids: { proxy: [], broker: [], app: [app.pid] }, stop: () => undefined }),
    },
    {
      id: 'queue-proxy',
      label: PATHS.queueProxy,
      start: async (app) => {
        // CONTAINER_CONCURRENCY=0: no limit, as Knative runs a revision by default. It binds 8022 and 9090 itself.
        const qp = netns.spawn(queueProxyBinary(), [], {
          env: {
            ...process.env,
            CONTAINER_CONCURRENCY: '0',
            QUEUE_SERVING_PORT: '18086',
            QUEUE_SERVING_TLS_PORT: '18087',
            USER_PORT: String(app.port),
            REVISION_TIMEOUT_SECONDS: '300',
            SERVING_LOGGING_CONFIG: '',
            SERVING_LOGGING_LEVEL: 'error',
            SERVING_NAMESPACE: 'bench',
            SERVING_CONFIGURATION: 'bench',
            SERVING_REVISION: 'bench-00001',
            SERVING_POD: 'bench',
            SERVING_POD_IP: '127.0.0.1',
          },
        });
        await waitHttp(netns, 'http://127.0.0.1:18086/ping');
        return { origin: 'http://127.0.0.1:18086', pids: { proxy: [qp.pid!], broker: [], app: [app.pid] }, stop: () => stopChildren([qp]) };
      },
    },
    {
      id: 'local',
      label: PATHS.local,
      start: async (app) => {
        const local = kueuer([
          'local',
          '--listen',
          '127.0.0.1:18081',
          '--admin-listen',
          '127.0.0.1:18091',
          '--app',
          `127.0.0.1:${app.port}`,
          '--concurrency',
          '64',
          '--queue',
          'bench-local',
        ]);
        await waitHttp(netns, 'http://127.0.0.1:18091/readyz');
        await waitHttp(netns, 'http://127.0.0.1:18081/ping');
        return { origin: 'http://127.0.0.1:18081', pids: { proxy: [local.pid!], broker: [], app: [app.pid] }, stop: () => stopChildren([local]) };
      },
    },
    { id: 'amqp', label: PATHS.amqp, broker: 'rabbitmq', start: async (app) => pair(await brokers.rabbitmq(), app, 18082) },
    { id: 'kafka', label: PATHS.kafka, broker: 'kafka', start: async (app) => pair(`kafka://${await brokers.kafka()}`, app, 18083) },
    // Replication's cost (issue 21): the same pair on three nodes, each type of queue or topic against the other.
    ...(['quorum', 'classic'] as const).map((type): PathDef => ({
      id: `amqp-${type}`,
      label: REPLICATED_PATHS[type],
      broker: 'rabbitmq-cluster',
      start: async (app) => pair(await brokers.rabbitmqCluster(), app, 18085, ['--queue-type', type]),
    })),
    ...([3, 1] as const).map((rf): PathDef => ({
      id: `kafka-rf${rf}`,
      label: REPLICATED_PATHS[`rf${rf}`],
      broker: 'kafka-cluster',
      start: async (app) =>
        pair(`kafka://${await brokers.kafkaCluster()}`, app, 18088, [
          '--kafka-replication-factor',
          String(rf),
          '--kafka-min-insync-replicas',
          String(Math.min(rf, 2)),
        ]),
    })),
  ];
}

function machine(): string {
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  const version = (cmd: string, args: string[]): string => {
    try {
      return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    } catch {
      return 'unknown';
    }
  };
  const rabbit = version('dpkg-query', ['-W', '-f=${Version}', 'rabbitmq-server']);
  const wrk = version('dpkg-query', ['-W', '-f=${Version}', 'wrk']);
  return `${cpus().length} × ${cpu}, ${(totalmem() / 1024 ** 3).toFixed(0)} GiB RAM, Node ${process.version}, RabbitMQ ${rabbit}, wrk ${wrk}, ${process.platform}`;
}

async function main(): Promise<void> {
  const admission =
    process.env.BENCH_ADMISSION === '0' ? [] : (console.log('admission webhook, open-loop load:'), await benchAdmission(root, timing.seconds, children));
  const netns = await Netns.create();
  mkdirSync(join(root, '.cache', 'bench'), { recursive: true });
  const brokers = new BrokerNodes(netns, root);
  process.on('exit', () => {
    stopChildren(children);
    brokers.stopAll();
    netns.close();
  });
  // Interrupted, it still stops the brokers and empties the namespace (the 'exit' handler above).
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(130));
  const loadAtStart = uptimeLoad();
  console.log(`machine: ${machine()}\nload: ${loadAtStart}\n${timing.seconds} s per measurement after ${timing.warmupSeconds} s warm-up\n`);

  const apps: App[] = [
    { label: '0 ms app', delayMs: 0, port: 18080, concurrencies: [1, 64], pid: 0 },
    { label: '10 ms app', delayMs: 10, port: 18070, concurrencies: [64], pid: 0 },
  ];
  for (const app of apps) {
    app.pid = netns.spawn(process.execPath, [join(root, 'dist/demo/echo-app.js'), String(app.port), String(app.delayMs), String(app.delayMs)]).pid!;
    await waitHttp(netns, `http://127.0.0.1:${app.port}/`);
  }

  const rows: Row[] = [];
  let held: HeldClients | undefined;
  let heldFailure: string | undefined;
  const chosen = paths(netns, brokers).filter((p) => pathIds.includes(p.id));
  for (const [i, path] of chosen.entries()) {
    for (const app of measureRows ? apps : []) {
      const instance = await path.start(app);
      for (const c of app.concurrencies) {
        for (const generator of generators) {
          const m = measureOnce(netns, root, generator, instance.origin, c, timing, instance.pids);
          rows.push({ app: app.label, path: path.label, ...m });
          console.log(
            `${app.label.padEnd(10)} ${path.label.padEnd(28)} ${generator.padEnd(6)} c=${String(c).padEnd(3)} ${m.rps.toFixed(0).padStart(7)} req/s  p50 ${m.p50.toFixed(3)} ms  p99 ${m.p99.toFixed(3)} ms  CPU ${m.cpuUs.proxy.toFixed(0)} µs/req (broker ${m.cpuUs.broker.toFixed(0)}, app ${m.cpuUs.app.toFixed(0)})  errors ${m.errors}`,
          );
        }
      }
      instance.stop();
    }
    if (path.id === 'amqp' && heldCount > 0) {
      try {
        held = await measureHeldClients(netns, root, await brokers.rabbitmq(), apps[0]!.port, heldCount);
      } catch (err) {
        heldFailure = (err as Error).message; // reported; the other rows still run
      }
      console.log(heldClientsLines(held, heldFailure)[0]);
    }
    // A broker runs only while its own paths are measured.
    if (chosen[i + 1]?.broker !== path.broker) brokers.stopAll();
  }

  let asyncRows: AsyncRow[] = [];
  if (process.env.BENCH_ASYNC !== '0') {
    const backends = [
      { label: 'embedded', url: async () => 'memory' },
      { label: 'RabbitMQ', url: () => brokers.rabbitmq() },
    ];
    asyncRows = await benchAsync(netns, root, apps, backends, timing, children);
    brokers.stopAll();
  }

  const fast = apps[0]!.label;
  const slow = apps[1]!.label;
  const replicated = new Set<string>(Object.values(REPLICATED_PATHS));
  const mainRows = rows.filter((r) => !replicated.has(r.path));
  const replicationRows = rows.filter((r) => replicated.has(r.path) || r.path === PATHS.direct);
  const summary = [...targets(mainRows, fast, slow), ...heldClientsLines(held, heldFailure)];
  const replicationSummary = replicationLines(replicationRows, fast, slow);
  console.log(`\n${summary.join('\n')}\n\n${replicationSummary.join('\n')}`);
  if (process.env.BENCH_WRITE_DOC === '0') return;
  const docPath = join(root, 'docs', 'benchmarks.md');
  const runLine = `Run on ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC: ${machine()}; load average (1, 5, 15 min) ${loadAtStart} when the load rows started, ${uptimeLoad()} at the end. ${timing.seconds} s per measurement after a ${timing.warmupSeconds} s warm-up; load generators: ${generators.join(', ')} (wrk -t1).`;
  let doc = readFileSync(docPath, 'utf8');
  if (asyncRows.length > 0) {
    const asyncRunLine = runLine.replace(/load generators: .*$/, 'load generator: scripts/bench/bench-async-client.ts (undici).');
    const section = ['<!-- bench-async:start (written by `npm run bench`) -->', asyncRunLine, '', ...asyncTable(asyncRows), '<!-- bench-async:end -->'];
    doc = doc.replace(/<!-- bench-async:start[\s\S]*<!-- bench-async:end -->/, section.join('\n'));
  }
  // Each section is rewritten only when this run measured its paths, so a narrower run (BENCH_PATHS) keeps the other.
  if (rows.some((r) => replicated.has(r.path))) {
    const section = [
      '<!-- bench-replication:start (written by `npm run bench`) -->',
      runLine,
      '',
      ...table(replicationRows),
      '',
      ...replicationSummary,
      '<!-- bench-replication:end -->',
    ];
    doc = doc.replace(/<!-- bench-replication:start[\s\S]*<!-- bench-replication:end -->/, section.join('\n'));
  }
  if (!mainRows.some((r) => r.path !== PATHS.direct) && admission.length === 0 && !held) {
    writeFileSync(docPath, doc);
    console.log(`\nwrote ${docPath} (replication and asynchronous sections only)`);
    return;
  }
  const generated = [
    '<!-- bench:start (written by `npm run bench`; edit outside these markers) -->',
    runLine,
    '',
    ...table(mainRows),
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
}

function uptimeLoad(): string {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
