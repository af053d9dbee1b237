/**
 * Kueuer on Kafka on the real node, as README's "Helm" section says with a
 * broker Secret of one's own: a Kafka 4 broker of the caller's own
 * (scripts/dev/kafka.sh) bound to the node bridge's host address, which pods
 * reach and which the broker advertises; the namespace kueuer-system and the
 * Secret kueuer-backend (KUEUER_BACKEND=kafka://…, plus any extra keys) in it;
 * then `helm install` of charts/kueuer with the image under test.
 * Used by test/node/kafka-node.test.ts and the scenario runner
 * (scripts/scenario/variants.ts).
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { mustSucceed } from './control-plane.js';
import type { RealCluster } from './node.js';
import { helmInstallKueuer } from './helm-install.js';
import { userEnv } from './real-install.js';

const root = join(import.meta.dirname, '..', '..');

export interface KafkaOnNode {
  /** host:port on the node bridge. */
  address: string;
  /** kafka://host:port */
  backend: string;
  /** Writes the Secret kueuer-backend (the backend and the extra keys) into `namespace`. */
  createBackendSecret(namespace: string): void;
  /** Stops the broker (its data directory is kept for the next start). */
  stop(): void;
}

/** The broker Secret, as a user writes it. */
export function kafkaBackendSecret(namespace: string, backend: string, extra: Record<string, string> = {}): string {
  const data = Object.entries({ KUEUER_BACKEND: backend, ...extra })
    .map(([k, v]) => `${k}: ${JSON.stringify(v)}`)
    .join(', ');
  return `apiVersion: v1\nkind: Secret\nmetadata: {name: kueuer-backend, namespace: ${namespace}}\nstringData: {${data}}\n`;
}

/**
 * Starts a broker of its own on the bridge address at `port`, with its data in .cache/kafka/<dataDir>.
 * `extraSecret` goes into every kueuer-backend Secret (e.g. KUEUER_KAFKA_PARTITIONS).
 */
export function startKafkaOnBridge(cluster: RealCluster, port: string, dataDir: string, extraSecret: Record<string, string> = {}): KafkaOnNode {
  const env = { ...process.env, KUEUER_KAFKA_HOST: cluster.bridgeGateway, KUEUER_KAFKA_PORT: port, KUEUER_KAFKA_DIR: join(root, '.cache', 'kafka', dataDir) };
  const kafkaSh = join(root, 'scripts', 'dev', 'kafka.sh');
  const address = execFileSync('bash', [kafkaSh, 'start'], { encoding: 'utf8', env }).trim().split('\n').pop()!;
  const stop = () => void execFileSync('bash', [kafkaSh, 'stop'], { env, stdio: 'inherit' });
  if (address !== `${cluster.bridgeGateway}:${port}`) {
    stop();
    throw new Error(`scripts/dev/kafka.sh started a broker at ${address}, not on the bridge at ${cluster.bridgeGateway}:${port}`);
  }
  const backend = `kafka://${address}`;
  return {
    address,
    backend,
    createBackendSecret: (namespace) =>
      void mustSucceed(cluster.controlPlane.apply(kafkaBackendSecret(namespace, backend, extraSecret)), `the Secret kueuer-backend in ${namespace}`),
    stop,
  };
}

/** README, "Helm", with a broker Secret of one's own (broker.type ""): the namespace and the Secret first, then the chart. */
export async function helmInstallOnKafka(cluster: RealCluster, kafka: KafkaOnNode, helmBin: string, imageRef: string): Promise<void> {
  mustSucceed(cluster.controlPlane.kubectl(['create', 'namespace', 'kueuer-system']), 'namespace kueuer-system');
  kafka.createBackendSecret('kueuer-system');
  const installed = await helmInstallKueuer({ helmBin, imageRef, env: userEnv(cluster.controlPlane) });
  if (installed.code !== 0) throw new Error(`helm install: ${installed.output}`);
}
