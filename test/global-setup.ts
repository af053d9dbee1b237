/**
 * Prepares what the integration tests need, once per `vitest run`, before any
 * test starts (so a cold build does not starve timing-sensitive tests):
 * - the control-plane binaries (scripts/dev/k8s-binaries.sh builds them once and
 *   caches them under .cache/k8s; a cold machine takes several minutes);
 * - a private RabbitMQ node (installed from Debian when missing) via
 *   scripts/dev/rabbitmq.sh. KUEUER_TEST_AMQP_URL points the tests at an existing
 *   broker instead.
 * - three replicated Kafka brokers (scripts/dev/kafka-cluster.sh), started once and
 *   shared by the files that need a cluster; KUEUER_TEST_KAFKA_CLUSTER_URL
 *   points them at a running one instead (started by that script: the fault
 *   rows kill and restart its nodes with it).
 * - helm, for the chart's tests (test/integration/install-artifacts.test.ts):
 *   scripts/dev/helm.sh builds it once from the Go module proxy and caches it
 *   under .cache/helm.
 * - the real node's Debian packages, crictl and the sandbox image
 *   (scripts/dev/node.sh, cached under .cache/node), for test/node.
 * - a private Redis (scripts/dev/redis.sh, data under .cache/redis), the store of
 *   the asynchronous requests' tests; KUEUER_TEST_REDIS_URL points them at another.
 * - the third-party HTTP apps of the foreign-peer suites (test/foreign):
 *   scripts/dev/third-party-apps.sh builds go-httpbin once from the Go module
 *   proxy and caches it under .cache/third-party.
 * The scripts run at once, in three lanes: the Go builds one after another
 * (each is CPU- and memory-heavy cold), the scripts that may run apt-get one
 * after another (dpkg takes one lock), and Kafka's (both brokers' scripts share
 * the jars they fetch). Anything that cannot be built or started fails the run
 * with that script's error, after stopping the others and what they started;
 * nothing is skipped.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type {} from 'vitest';
import type { TestProject } from 'vitest/node';
import { waitForBrokers } from './helpers/kafka.js';

declare module 'vitest' {
  export interface ProvidedContext {
    amqpUrl: string;
    /**
     * The 3-node RabbitMQ cluster of scripts/dev/rabbitmq-cluster.sh: `lb` is HAProxy's address (as a
     * Kubernetes Service), `nodes` the three nodes' comma-separated URL. Empty when this run needs none.
     */
    amqpCluster: { lb: string; nodes: string };
    /** kafka://127.0.0.1:PORT of the single-node KRaft broker scripts/dev/kafka.sh started. */
    kafkaUrl: string;
    /** kafka://host:port,host:port,host:port of the three KRaft brokers scripts/dev/kafka-cluster.sh started (test/faults/kafka-cluster.test.ts kills and restarts them). */
    kafkaClusterUrl: string;
    /** Where scripts/dev/k8s-binaries.sh put etcd, kube-apiserver, kube-controller-manager, kubectl, kube-scheduler, kubelet and kube-proxy. */
    k8sBinDir: string;
    /** The helm binary scripts/dev/helm.sh built. */
    helmBin: string;
    /** scripts/dev/node.sh's cache: bin/crictl and images/current/{pause,busybox}.tar (test/helpers/node.ts). */
    nodeDir: string;
    /** The go-httpbin binary scripts/dev/third-party-apps.sh built (test/foreign). */
    goHttpbin: string;
    /** redis://127.0.0.1:PORT of scripts/dev/redis.sh's server (asynchronous requests' store), or KUEUER_TEST_REDIS_URL. */
    redisUrl: string;
    /** vegeta (scripts/dev/vegeta.sh) and metrics-server (scripts/scenario/metrics-server.sh), for test/node/scenario-short.test.ts. */
    vegetaBin: string;
    metricsServerBin: string;
  }
}

const root = join(import.meta.dirname, '..');
const dev = (name: string) => join(root, 'scripts', 'dev', name);
/** Test files that use the 3-node RabbitMQ cluster; it starts only when the run includes one. */
const CLUSTER_TESTS = ['test/faults/replicated-rabbitmq.test.ts', 'test/integration/broker-checks.test.ts', 'test/node/replicated-node.test.ts'];

/** Whether this run's file filters (none: the whole suite) select a test that needs the cluster. */
function runNeedsCluster(): boolean {
  const runAt = process.argv.findIndex((a) => a === 'run' || a.endsWith('vitest.mjs'));
  const filters = process.argv.slice(runAt + 1).filter((a) => !a.startsWith('-') && a !== 'run');
  return filters.length === 0 || filters.some((f) => CLUSTER_TESTS.some((t) => t.includes(f.replace(/^\.\//, ''))));
}

/**
 * The set-up's scripts, run as child processes (their progress on stderr, as it comes). The first
 * failure, of a script or of a step between them, aborts the rest: the scripts running are killed
 * (their whole process group) and the ones not yet begun never start.
 */
class ScriptRunner {
  private readonly running = new Set<ChildProcess>();
  /** The first failure: the one the run fails with. */
  failure: Error | undefined;

  /**
   * `bash SCRIPT ARGS`; resolves with what it printed on stdout (trimmed). An `apt` script is
   * never killed (dpkg interrupted mid-install leaves the machine's packages half-configured):
   * after a failure elsewhere it runs to its end, and the set-up fails then.
   */
  run(script: string, args: string[] = [], { apt = false } = {}): Promise<string> {
    const name = [script.slice(root.length + 1), ...args].join(' ');
    if (this.failure) return Promise.reject(new Error(`${name} not started: ${this.failure.message}`));
    return new Promise((resolve, reject) => {
      const child = spawn('bash', [script, ...args], { stdio: ['ignore', 'pipe', 'inherit'], detached: true });
      if (!apt) this.running.add(child);
      let out = '';
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
      child.on('error', (err) => reject(this.abort(new Error(`${name} could not run: ${err.message}`))));
      child.on('close', (code, signal) => {
        this.running.delete(child);
        if (code === 0) resolve(out.trim());
        else reject(this.abort(new Error(`${name} failed (${signal ?? `exit ${code}`}); its error is above. Its output:\n${out}`)));
      });
    });
  }

  /** Records the first failure and kills every script still running; returns `err`. */
  abort(err: Error): Error {
    if (!this.failure) {
      this.failure = err;
      for (const child of this.running) if (child.pid) killGroup(child.pid);
    }
    return err;
  }
}

/** SIGTERM to a script and everything it started (its process group). */
function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGTERM');
  } catch {
    // already gone
  }
}

/** `bash SCRIPT stop`, its output on the console; rejects naming the script when it fails. */
function stopScript(script: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [script, 'stop'], { stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('error', reject);
    child.on('close', (code, signal) =>
      code === 0 ? resolve() : reject(new Error(`${script.slice(root.length + 1)} stop failed (${signal ?? `exit ${code}`})`)),
    );
  });
}

/** The last line of a script's output: what it built or started. */
const lastLine = (out: string): string => out.split('\n').pop() ?? '';

/** `check` holds for `value`, or the error names the script and what it printed. */
function checked(value: string, check: (v: string) => boolean, what: string): string {
  if (!check(value)) throw new Error(`${what}:\n${value}`);
  return value;
}

export default async function setup(project: TestProject): Promise<() => Promise<void> | void> {
  // `npm run test:unit` needs neither service; `npm run test:fast` skips the control plane.
  const scope = process.env.KUEUER_TEST_SCOPE;
  if (scope === 'unit') return () => undefined;
  const scripts = new ScriptRunner();
  /** `SCRIPT stop` of each service started (or half-started); they stop together at the end. */
  const stops: string[] = [];
  /** Runs `steps` one after another; the first failure ends the lane and aborts the others. */
  const lane = async (...steps: Array<() => Promise<void>>): Promise<void> => {
    try {
      for (const step of steps) await step();
    } catch (err) {
      throw scripts.abort(err as Error);
    }
  };
  /** Starts a service with `SCRIPT start` (stopped with `SCRIPT stop` when the run ends or the set-up fails). */
  const start = async (script: string, apt = false): Promise<string> => {
    stops.push(script);
    return lastLine(await scripts.run(script, ['start'], { apt }));
  };

  /** A broker the tests reach by URL: `$EXTERNAL` when set, else the one `scripts/dev/SCRIPT start` starts (it may run apt-get). */
  const urlService = (key: 'redisUrl' | 'amqpUrl', external: string, script: string, scheme: string) => async (): Promise<void> => {
    const url = process.env[external] ?? (await start(dev(script), true));
    project.provide(
      key,
      checked(url, (v) => v.startsWith(scheme), `scripts/dev/${script} start printed no ${scheme} URL`),
    );
  };

  // Go builds: one at a time, each already parallel inside.
  const goBuilds = lane(
    ...(scope === 'fast'
      ? []
      : [
          async () => project.provide('k8sBinDir', lastLine(await scripts.run(dev('k8s-binaries.sh')))),
          async () =>
            project.provide(
              'helmBin',
              checked(lastLine(await scripts.run(dev('helm.sh'))), (v) => v.endsWith('/helm'), 'scripts/dev/helm.sh printed no helm path'),
            ),
          async () => project.provide('vegetaBin', lastLine(await scripts.run(dev('vegeta.sh')))),
          async () => project.provide('metricsServerBin', lastLine(await scripts.run(join(root, 'scripts', 'scenario', 'metrics-server.sh')))),
        ]),
    async () =>
      project.provide(
        'goHttpbin',
        checked(
          lastLine(await scripts.run(dev('third-party-apps.sh'))),
          (v) => v.endsWith('/go-httpbin'),
          'scripts/dev/third-party-apps.sh printed no go-httpbin path',
        ),
      ),
  );

  // The scripts that install Debian packages when they are missing: never two apt-get at once.
  const apt = lane(
    async () => {
      if (scope === 'fast') return;
      const nodeDir = lastLine(await scripts.run(dev('node.sh'), [], { apt: true }));
      project.provide(
        'nodeDir',
        checked(nodeDir, (v) => v.endsWith('/.cache/node'), 'scripts/dev/node.sh printed no node directory'),
      );
    },
    async () => {
      if (!runNeedsCluster()) return project.provide('amqpCluster', { lb: '', nodes: '' });
      // Idempotent: a cluster already running (KUEUER_TEST_KEEP_BROKERS) is reused, its dead nodes revived.
      const script = dev('rabbitmq-cluster.sh');
      stops.push(script);
      const out = await scripts.run(script, ['start'], { apt: true });
      const [nodes, lb] = out.split('\n').slice(-2);
      if (!nodes?.startsWith('amqp://') || !lb?.startsWith('amqp://')) throw new Error(`scripts/dev/rabbitmq-cluster.sh start printed no URLs:\n${out}`);
      project.provide('amqpCluster', { lb, nodes });
    },
    urlService('redisUrl', 'KUEUER_TEST_REDIS_URL', 'redis.sh', 'redis://'),
    urlService('amqpUrl', 'KUEUER_TEST_AMQP_URL', 'rabbitmq.sh', 'amqp://'),
  );

  // Kafka: both scripts use the jars scripts/dev/kafka.sh fetches; one after the other.
  const kafka = lane(
    async () => {
      const external = process.env.KUEUER_TEST_KAFKA_URL;
      const broker = external
        ? ''
        : checked(await start(dev('kafka.sh')), (v) => /^[\d.]+:\d+$/.test(v), 'scripts/dev/kafka.sh start printed no broker address');
      project.provide('kafkaUrl', external ?? `kafka://${broker}`);
    },
    async () => {
      const external = process.env.KUEUER_TEST_KAFKA_CLUSTER_URL;
      if (external) return project.provide('kafkaClusterUrl', external);
      const brokers = checked(
        await start(dev('kafka-cluster.sh')),
        (v) => /^([\d.]+:\d+,){2}[\d.]+:\d+$/.test(v),
        'scripts/dev/kafka-cluster.sh start printed no broker addresses',
      );
      await waitForBrokers(`kafka://${brokers}`, 3, 120_000);
      project.provide('kafkaClusterUrl', `kafka://${brokers}`);
    },
  );

  await Promise.allSettled([goBuilds, apt, kafka]);
  /** Stops every service at once; a stop that fails is reported, and fails the teardown. */
  const stopAll = async (): Promise<void> => {
    const stopped = await Promise.allSettled(stops.map((script) => stopScript(script)));
    const failed = stopped.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => (r.reason as Error).message);
    if (failed.length) throw new Error(failed.join('\n'));
  };
  if (scripts.failure) {
    // A script that failed fails the run, after stopping the services started (or half-started).
    await stopAll().catch((err: Error) => console.error(`global set-up: ${err.message}`));
    throw scripts.failure;
  }
  return async () => {
    if (process.env.KUEUER_TEST_KEEP_BROKERS) return;
    await stopAll();
  };
}
