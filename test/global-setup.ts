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
 * Anything that cannot be built or started fails the run; nothing is skipped.
 */
import { execFileSync } from 'node:child_process';
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

const script = join(import.meta.dirname, '..', 'scripts', 'dev', 'rabbitmq.sh');
const clusterScript = join(import.meta.dirname, '..', 'scripts', 'dev', 'rabbitmq-cluster.sh');
/** Test files that use the 3-node RabbitMQ cluster; it starts only when the run includes one. */
const CLUSTER_TESTS = ['test/faults/replicated-rabbitmq.test.ts', 'test/integration/broker-checks.test.ts'];

/** Whether this run's file filters (none: the whole suite) select a test that needs the cluster. */
function runNeedsCluster(): boolean {
  const runAt = process.argv.findIndex((a) => a === 'run' || a.endsWith('vitest.mjs'));
  const filters = process.argv.slice(runAt + 1).filter((a) => !a.startsWith('-') && a !== 'run');
  return filters.length === 0 || filters.some((f) => CLUSTER_TESTS.some((t) => t.includes(f.replace(/^\.\//, ''))));
}
const k8sBinaries = join(import.meta.dirname, '..', 'scripts', 'dev', 'k8s-binaries.sh');
const kafkaScript = join(import.meta.dirname, '..', 'scripts', 'dev', 'kafka.sh');
const kafkaClusterScript = join(import.meta.dirname, '..', 'scripts', 'dev', 'kafka-cluster.sh');
const helmScript = join(import.meta.dirname, '..', 'scripts', 'dev', 'helm.sh');
const nodeScript = join(import.meta.dirname, '..', 'scripts', 'dev', 'node.sh');
const redisScript = join(import.meta.dirname, '..', 'scripts', 'dev', 'redis.sh');
const thirdPartyApps = join(import.meta.dirname, '..', 'scripts', 'dev', 'third-party-apps.sh');

/** Runs a build script (its progress on stderr) and returns the last line it printed: what it built. */
function lastLine(script: string): string {
  return (
    execFileSync('bash', [script], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
      .trim()
      .split('\n')
      .pop() ?? ''
  );
}

export default async function setup(project: TestProject): Promise<() => void> {
  // `npm run test:unit` needs neither service; `npm run test:fast` skips the control plane.
  const scope = process.env.KUEUER_TEST_SCOPE;
  if (scope === 'unit') return () => undefined;
  if (scope !== 'fast') {
    project.provide('k8sBinDir', lastLine(k8sBinaries));
    const helm = lastLine(helmScript);
    if (!helm.endsWith('/helm')) throw new Error(`scripts/dev/helm.sh printed no helm path:\n${helm}`);
    project.provide('helmBin', helm);
    const nodeDir = lastLine(nodeScript);
    if (!nodeDir.endsWith('/.cache/node')) throw new Error(`scripts/dev/node.sh printed no node directory:\n${nodeDir}`);
    project.provide('nodeDir', nodeDir);
    project.provide('vegetaBin', lastLine(join(import.meta.dirname, '..', 'scripts', 'dev', 'vegeta.sh')));
    project.provide('metricsServerBin', lastLine(join(import.meta.dirname, '..', 'scripts', 'scenario', 'metrics-server.sh')));
  }
  {
    const out = execFileSync('bash', [thirdPartyApps], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    const bin = out.trim().split('\n').pop() ?? '';
    if (!bin.endsWith('/go-httpbin')) throw new Error(`scripts/dev/third-party-apps.sh printed no go-httpbin path:\n${out}`);
    project.provide('goHttpbin', bin);
  }
  const stops: Array<() => void> = [];
  // A service that cannot start fails the run, after stopping the ones already started.
  try {
    const externalKafka = process.env.KUEUER_TEST_KAFKA_URL;
    if (externalKafka) project.provide('kafkaUrl', externalKafka);
    else {
      const out = execFileSync('bash', [kafkaScript, 'start'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
      const broker = out.trim().split('\n').pop() ?? '';
      if (!/^[\d.]+:\d+$/.test(broker)) throw new Error(`scripts/dev/kafka.sh start printed no broker address:\n${out}`);
      project.provide('kafkaUrl', `kafka://${broker}`);
      stops.push(() => execFileSync('bash', [kafkaScript, 'stop'], { stdio: 'inherit' }));
    }
    if (scope !== 'unit' && runNeedsCluster()) {
      // Idempotent: a cluster already running (KUEUER_TEST_KEEP_BROKERS) is reused, its dead nodes revived.
      const out = execFileSync('bash', [clusterScript, 'start'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
      const [nodes, lb] = out.trim().split('\n').slice(-2);
      if (!nodes?.startsWith('amqp://') || !lb?.startsWith('amqp://')) throw new Error(`scripts/dev/rabbitmq-cluster.sh start printed no URLs:\n${out}`);
      project.provide('amqpCluster', { lb, nodes });
      stops.push(() => execFileSync('bash', [clusterScript, 'stop'], { stdio: 'inherit' }));
    } else project.provide('amqpCluster', { lb: '', nodes: '' });
    const externalCluster = process.env.KUEUER_TEST_KAFKA_CLUSTER_URL;
    if (externalCluster) project.provide('kafkaClusterUrl', externalCluster);
    else {
      const out = execFileSync('bash', [kafkaClusterScript, 'start'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
      const brokers = out.trim().split('\n').pop() ?? '';
      if (!/^([\d.]+:\d+,){2}[\d.]+:\d+$/.test(brokers)) throw new Error(`scripts/dev/kafka-cluster.sh start printed no broker addresses:\n${out}`);
      stops.push(() => execFileSync('bash', [kafkaClusterScript, 'stop'], { stdio: 'inherit' }));
      await waitForBrokers(`kafka://${brokers}`, 3, 120_000);
      project.provide('kafkaClusterUrl', `kafka://${brokers}`);
    }
    const externalRedis = process.env.KUEUER_TEST_REDIS_URL;
    if (externalRedis) project.provide('redisUrl', externalRedis);
    else {
      const url =
        execFileSync('bash', [redisScript, 'start'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
          .trim()
          .split('\n')
          .pop() ?? '';
      if (!url.startsWith('redis://')) throw new Error(`scripts/dev/redis.sh start printed no redis URL:\n${url}`);
      project.provide('redisUrl', url);
      stops.push(() => execFileSync('bash', [redisScript, 'stop'], { stdio: 'inherit' }));
    }
    const external = process.env.KUEUER_TEST_AMQP_URL;
    if (external) project.provide('amqpUrl', external);
    else {
      const out = execFileSync('bash', [script, 'start'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
      const url = out.trim().split('\n').pop() ?? '';
      if (!url.startsWith('amqp://')) throw new Error(`scripts/dev/rabbitmq.sh start printed no amqp URL:\n${out}`);
      project.provide('amqpUrl', url);
      stops.push(() => execFileSync('bash', [script, 'stop'], { stdio: 'inherit' }));
    }
  } catch (err) {
    for (const stop of stops) stop();
    throw err;
  }
  return () => {
    if (process.env.KUEUER_TEST_KEEP_BROKERS) return;
    for (const stop of stops) stop();
  };
}
