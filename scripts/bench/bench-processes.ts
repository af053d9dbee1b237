/**
 * The processes `npm run bench` starts inside its network namespace: Kueuer's
 * commands, the private broker nodes (each on its own port and data directory
 * under .cache/bench, never the test suite's shared brokers), and the
 * "clients held at once" measurement.
 */
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Netns } from './bench-netns.js';
import type { HeldClients } from './bench-report.js';

const RABBITMQ_PORT = 20672; // below the ephemeral port range (32768+), which outgoing connections take
const KAFKA_PORT = 20092;
// The 3-node clusters of the replication rows (scripts/dev/rabbitmq-cluster.sh, kafka-cluster.sh), with their own
// ports and data under .cache/bench: the fault tests use those scripts' default ports and directories.
const RABBITMQ_CLUSTER_PORT = 20700;
const KAFKA_CLUSTER_PORT = 20201;

/** Which broker a bench path runs on. */
export type BrokerKind = 'rabbitmq' | 'kafka' | 'rabbitmq-cluster' | 'kafka-cluster';

/**
 * The NODE_OPTIONS the shipped responder Deployment sets (its V8 heap bounds),
 * read from manifests/base/responder/deployment.yaml so the bench measures the
 * responder as it runs in a cluster.
 */
export function shippedResponderNodeOptions(root: string): string {
  const yaml = readFileSync(join(root, 'manifests/base/responder/deployment.yaml'), 'utf8');
  const m = /\{name: NODE_OPTIONS, value: "([^"]*)"\}/.exec(yaml);
  if (!m) throw new Error('manifests/base/responder/deployment.yaml sets no NODE_OPTIONS for the responder');
  return m[1]!;
}

/** `kueuer <args>` in the namespace; a responder gets the shipped Deployment's V8 flags. */
export function startKueuer(netns: Netns, root: string, args: string[]): ChildProcess {
  const env: NodeJS.ProcessEnv = { ...process.env, KUEUER_LOG_LEVEL: 'warn' };
  if (args[0] === 'responder') env.NODE_OPTIONS = [process.env.NODE_OPTIONS, shippedResponderNodeOptions(root)].filter(Boolean).join(' ');
  return netns.spawn(process.execPath, [join(root, 'bin/kueuer.js'), ...args], { cwd: root, env });
}

const WAIT_SCRIPT = `
const [url, timeoutMs] = process.argv.slice(1);
const until = Date.now() + Number(timeoutMs);
for (;;) {
  try { const res = await fetch(url); await res.arrayBuffer(); if (res.status === 200) process.exit(0); } catch {}
  if (Date.now() > until) { console.error(url + ' did not answer 200 within ' + timeoutMs + ' ms'); process.exit(1); }
  await new Promise((r) => setTimeout(r, 100));
}`;

/** Waits, from inside the namespace, until `url` answers 200. */
export async function waitHttp(netns: Netns, url: string, timeoutMs = 20_000): Promise<void> {
  netns.run(process.execPath, ['--input-type=module', '-e', WAIT_SCRIPT, url, String(timeoutMs)]);
  return Promise.resolve();
}

/** The private RabbitMQ and Kafka nodes, started on first use inside the namespace. */
export class BrokerNodes {
  private amqpUrl: string | undefined;
  private kafkaAddress: string | undefined;
  private amqpClusterUrl: string | undefined;
  private kafkaClusterAddress: string | undefined;

  constructor(
    private readonly netns: Netns,
    private readonly root: string,
  ) {}

  private env(): NodeJS.ProcessEnv {
    return {
      ...process.env,
      KUEUER_RABBITMQ_PORT: String(RABBITMQ_PORT),
      KUEUER_RABBITMQ_DIR: join(this.root, '.cache/bench/rabbitmq'),
      KUEUER_KAFKA_PORT: String(KAFKA_PORT),
      KUEUER_KAFKA_DIR: join(this.root, '.cache/bench/kafka'),
      KUEUER_RABBITMQ_CLUSTER_PORT: String(RABBITMQ_CLUSTER_PORT),
      KUEUER_RABBITMQ_CLUSTER_DIR: join(this.root, '.cache/bench/rabbitmq-cluster'),
      KUEUER_KAFKA_CLUSTER_PORT: String(KAFKA_CLUSTER_PORT),
      KUEUER_KAFKA_CLUSTER_DIR: join(this.root, '.cache/bench/kafka-cluster'),
    };
  }

  /** The script's output lines (its URL or address is on the last; rabbitmq-cluster.sh prints the nodes' URL first). */
  private script(name: string, action: string): string[] {
    return this.netns
      .run('bash', [join(this.root, 'scripts', 'dev', name), action], this.env())
      .trim()
      .split('\n');
  }

  async rabbitmq(): Promise<string> {
    this.amqpUrl ??= this.script('rabbitmq.sh', 'start').pop();
    return Promise.resolve(this.amqpUrl!);
  }

  async kafka(): Promise<string> {
    this.kafkaAddress ??= this.script('kafka.sh', 'start').pop();
    return Promise.resolve(this.kafkaAddress!);
  }

  /**
   * The three RabbitMQ nodes, named in one URL (host1,host2,host3): Kueuer connects to them directly, as to
   * the pods behind a Service in iptables mode; the script's HAProxy is left out of the path and of the CPU.
   */
  async rabbitmqCluster(): Promise<string> {
    this.amqpClusterUrl ??= this.script('rabbitmq-cluster.sh', 'start').find((l) => l.startsWith('amqp://') && l.includes(','));
    return Promise.resolve(this.amqpClusterUrl!);
  }

  /** The three KRaft brokers' bootstrap addresses. */
  async kafkaCluster(): Promise<string> {
    this.kafkaClusterAddress ??= this.script('kafka-cluster.sh', 'start').pop();
    return Promise.resolve(this.kafkaClusterAddress!);
  }

  /** The broker processes running now (RabbitMQ's beams, Kafka's JVMs). */
  pids(): number[] {
    const bench = join(this.root, '.cache/bench');
    const files = [
      ...(this.amqpUrl ? [join(bench, 'rabbitmq/rabbitmq.pid')] : []),
      ...(this.kafkaAddress ? [join(bench, 'kafka/kafka.pid')] : []),
      ...(this.amqpClusterUrl ? [1, 2, 3].map((n) => join(bench, `rabbitmq-cluster/node${n}/rabbitmq.pid`)) : []),
      ...(this.kafkaClusterAddress ? [1, 2, 3].map((n) => join(bench, `kafka-cluster/node-${n}/kafka.pid`)) : []),
    ];
    return files.map((f) => Number(readFileSync(f, 'utf8').trim()));
  }

  stopAll(): void {
    if (this.amqpUrl) this.script('rabbitmq.sh', 'stop');
    if (this.kafkaAddress) this.script('kafka.sh', 'stop');
    if (this.amqpClusterUrl) this.script('rabbitmq-cluster.sh', 'stop');
    if (this.kafkaClusterAddress) this.script('kafka-cluster.sh', 'stop');
    this.amqpUrl = undefined;
    this.kafkaAddress = undefined;
    this.amqpClusterUrl = undefined;
    this.kafkaClusterAddress = undefined;
  }
}

function memoryMb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) / 1024;
}

/**
 * One responder on RabbitMQ holds `count` clients (no sidecar yet); its RSS is
 * read; then a sidecar (concurrency 64) answers them all through the 0 ms app.
 */
export async function measureHeldClients(netns: Netns, root: string, amqpUrl: string, appPort: number, count: number): Promise<HeldClients> {
  const queue = `bench-held-${Date.now()}`;
  const common = ['--backend', amqpUrl, '--queue', queue];
  const responder = startKueuer(netns, root, [
    'responder',
    '--listen',
    '127.0.0.1:18084',
    '--admin-listen',
    '127.0.0.1:18184',
    '--max-pending',
    String(count),
    ...common,
  ]);
  const started = [responder];
  try {
    await waitHttp(netns, 'http://127.0.0.1:18184/readyz', 60_000);
    const rssIdleMb = memoryMb(responder.pid!, 'VmRSS');
    const client = netns.spawn(process.execPath, [join(root, 'dist/scripts/bench/bench-held-clients.js'), '18084', '18184', String(count), '120'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    started.push(client);
    let rssHeldMb = NaN;
    let heap = { heapMb: NaN, externalMb: NaN };
    let held = 0;
    for await (const line of createInterface({ input: client.stdout! })) {
      const msg = JSON.parse(line) as {
        held?: number;
        heapMb: number;
        externalMb: number;
        answered?: number;
        errors: number;
        crossed: number;
        inversions: number;
        seconds: number;
      };
      if (msg.held !== undefined) {
        rssHeldMb = memoryMb(responder.pid!, 'VmRSS');
        heap = { heapMb: msg.heapMb, externalMb: msg.externalMb };
        held = msg.held;
        started.push(
          startKueuer(netns, root, ['sidecar', '--app', `127.0.0.1:${appPort}`, '--admin-listen', '127.0.0.1:18284', ...common, '--concurrency', '64']),
        );
      } else if (msg.answered !== undefined) {
        return { count, held, rssIdleMb, rssHeldMb, rssPeakMb: memoryMb(responder.pid!, 'VmHWM'), ...msg, ...heap, answered: msg.answered };
      }
    }
    throw new Error('the held-clients client ended without a result');
  } finally {
    for (const c of started) c.kill('SIGKILL');
  }
}
