/**
 * `kueuer check`, per opted-in workload's broker: whether its queues or topics
 * survive the loss of one broker node (issue 21).
 * - RabbitMQ (management API): the type of the request queue and of its
 *   `<queue>.dead-letter` queue; a classic queue on a cluster of several nodes
 *   lives on one of them and FAILs, with the migration.
 * - Kafka (admin API): the replication factor and min.insync.replicas of the
 *   request topic and the responders' reply topics; replication factor 1 (or
 *   min.insync.replicas 1) on several brokers FAILs, with the command that fixes it.
 * On a single node or broker there is no replica to lose: those are reported, not failed.
 * Pure decisions first; the reads after them.
 */
import { parsePodSettings } from '../shared/annotations.js';
import { brokerSettings, decodedSecret } from '../shared/broker-secret/shapes.js';
import { isKueuerError } from '../shared/errors.js';
import type { Cluster } from '../shared/kube/cluster.js';
import { parseBackend } from '../shared/transport/backend.js';
import { managementUnreachable, managementUrlFor } from '../shared/transport/amqp/depth.js';
import { kafkaAuth, requestTopic, type KafkaSpec, type TopicReplication } from '../shared/transport/kafka/config.js';
import { readReplication, singlePointsOfFailure } from '../shared/transport/kafka/topics.js';
import { deadLetterQueue } from '../sidecar/worker.js';
import { fail, ok, readFailure, type CheckResult } from './install-checks.js';
import { apiError, KubeTimeoutError } from './kube-call.js';
import { optedInWorkloads, workloadQueue } from './workload-status.js';

/** A RabbitMQ queue as the management API shows it; `type` undefined: not declared yet. */
export interface QueueFound {
  name: string;
  type: string | undefined;
  node?: string;
}

export const CLASSIC_MIGRATION =
  'migrate it to a quorum queue: stop its responders, let the sidecars empty it, delete it (rabbitmqctl delete_queue NAME) and restart the sidecars, which declare it as quorum (docs/rabbitmq.md, "An existing queue of another type")';

/** The queue types of one broker's queues on a cluster of `nodes` nodes: one FAIL per classic queue when there are several. */
export function rabbitQueueResults(broker: string, queues: readonly QueueFound[], nodes: number): CheckResult[] {
  const results: CheckResult[] = [];
  const fine: string[] = [];
  for (const q of queues) {
    if (q.type === undefined) fine.push(`${q.name} not declared yet`);
    else if (q.type === 'classic' && nodes > 1) {
      results.push(
        fail(
          `RabbitMQ queue ${q.name} (${broker}) is a classic queue on a ${nodes}-node cluster: it lives on ${q.node ?? 'one node'} only and is lost to every client while that node is down`,
          CLASSIC_MIGRATION.replace('NAME', q.name),
        ),
      );
    } else fine.push(`${q.name} ${q.type}${q.type === 'classic' ? ' (single node: no other node to fail over to)' : ''}`);
  }
  if (fine.length > 0) results.unshift(ok(`RabbitMQ queues (${broker}, ${nodes} node${nodes === 1 ? '' : 's'}): ${fine.join(', ')}`));
  return results;
}

/** Replication of one broker's topics on a cluster of `brokers` brokers: a FAIL per single point of failure when there are several. */
export function kafkaTopicResults(
  broker: string,
  topics: ReadonlyArray<{ name: string; replication: TopicReplication | undefined }>,
  brokers: number,
): CheckResult[] {
  const results: CheckResult[] = [];
  const fine: string[] = [];
  for (const t of topics) {
    if (!t.replication) {
      fine.push(`${t.name} not created yet`);
      continue;
    }
    const problems = brokers > 1 ? singlePointsOfFailure(t.name, t.replication, brokers) : [];
    for (const p of problems) {
      const [what, fix] = p.split('; Kueuer does not change existing topics: ');
      results.push(fail(`${what} (${broker}, ${brokers} brokers)`, `Kueuer does not change existing topics: ${fix}`));
    }
    if (problems.length === 0) {
      fine.push(
        `${t.name} RF ${t.replication.replicationFactor}, min.insync.replicas ${t.replication.minInsyncReplicas}${brokers === 1 ? ' (single broker: no other broker to fail over to)' : ''}`,
      );
    }
  }
  if (fine.length > 0) results.unshift(ok(`Kafka topics (${broker}, ${brokers} broker${brokers === 1 ? '' : 's'}): ${fine.join(', ')}`));
  return results;
}

/** Reads the queues' types and the cluster's node count from RabbitMQ's management API. */
export async function readRabbitQueues(
  amqpUrl: string,
  managementUrl: string | undefined,
  names: readonly string[],
): Promise<{ nodes: number; queues: QueueFound[] }> {
  const mgmt = managementUrlFor(amqpUrl, managementUrl);
  const get = async (path: string): Promise<unknown> => {
    let res: Response;
    try {
      res = await fetch(`${mgmt.base}/api/${path}`, { headers: { authorization: mgmt.authorization }, signal: AbortSignal.timeout(5000) });
    } catch (err) {
      throw new Error(managementUnreachable(mgmt.base, err)); // fetch's own message is only "fetch failed"
    }
    if (res.status === 404) return undefined;
    if (!res.ok) throw new Error(`RabbitMQ's management API at ${mgmt.base} answered ${res.status} for /api/${path}`);
    return res.json();
  };
  const nodes = ((await get('nodes')) as unknown[] | undefined)?.length ?? 1;
  const queues = await Promise.all(
    names.map(async (name): Promise<QueueFound> => {
      const q = (await get(`queues/${encodeURIComponent(mgmt.vhost)}/${encodeURIComponent(name)}`)) as { type?: string; node?: string } | undefined;
      return { name, type: q ? (q.type ?? 'classic') : undefined, ...(q?.node ? { node: q.node } : {}) };
    }),
  );
  return { nodes, queues };
}

/** Reads the request topics' and the queues' reply topics' replication, and the live broker count, with the Secret's credentials. */
export async function readKafkaTopics(
  spec: KafkaSpec,
  settings: Readonly<Record<string, string>>,
  queues: readonly string[],
): Promise<{ brokers: number; topics: Array<{ name: string; replication: TopicReplication | undefined }> }> {
  await import('../shared/transport/kafka/client.js'); // its kafkajs guard, before any client exists
  const { Kafka, logLevel } = await import('kafkajs');
  const auth = kafkaAuth(spec, settings);
  const admin = new Kafka({
    brokers: spec.brokers,
    ...(auth.ssl ? { ssl: auth.ssl } : {}),
    ...(auth.sasl ? { sasl: auth.sasl as never } : {}),
    logLevel: logLevel.NOTHING,
    // Bounded like the management API's reads (5 s): kafkajs waits 30 s for a broker that accepts and never answers.
    connectionTimeout: 5000,
    requestTimeout: 5000,
    retry: { retries: 2 },
  }).admin();
  await admin.connect();
  try {
    const brokers = (await admin.describeCluster()).brokers.length;
    const existing = new Set(await admin.listTopics());
    const names = queues.flatMap((q) => [requestTopic(q), ...[...existing].filter((t) => t.startsWith(`kueuer.reply.${q}.`)).sort()]);
    const topics = [];
    for (const name of names) topics.push({ name, replication: existing.has(name) ? await readReplication(admin, name) : undefined });
    return { brokers, topics };
  } finally {
    await admin.disconnect();
  }
}

/** The checks for one broker Secret's settings and the queues of the workloads that use it. */
export async function brokerReplicationResults(where: string, settings: Readonly<Record<string, string>>, queues: readonly string[]): Promise<CheckResult[]> {
  const backend = parseBackend(settings.KUEUER_BACKEND ?? '');
  if (backend.kind === 'amqp') {
    const read = await readRabbitQueues(backend.url, settings.KUEUER_RABBITMQ_MANAGEMENT_URL, [...queues.flatMap((q) => [q, deadLetterQueue(q)])]);
    return rabbitQueueResults(where, read.queues, read.nodes);
  }
  if (backend.kind === 'kafka') {
    // The Secret is its workload's owner's to write: a file it names (KUEUER_KAFKA_PASSWORD_FILE=~/.ssh/id_rsa) would be read
    // on this machine and sent to the broker the same Secret names. Its _FILE paths are the pod's, never read here.
    const file = Object.keys(settings).find((k) => k.endsWith('_FILE'));
    if (file) {
      throw new Error(
        `${file} names a file inside the pods; kueuer check reads no file a workload's Secret names: put the value itself in the Secret (${file.slice(0, -'_FILE'.length)}) to have its replication checked`,
      );
    }
    const read = await readKafkaTopics(backend.spec, settings, queues);
    return kafkaTopicResults(where, read.topics, read.brokers);
  }
  return [];
}

/** Every opted-in Deployment and StatefulSet, grouped by the broker Secret its pods read (namespace/name). */
async function workloadsBySecret(cluster: Cluster, defaultSecret: string): Promise<Map<string, string[]>> {
  const apps = cluster.clients.apps;
  const [deployments, statefulSets] = await Promise.all([apps.listDeploymentForAllNamespaces(), apps.listStatefulSetForAllNamespaces()]);
  const groups = new Map<string, string[]>();
  for (const w of optedInWorkloads(deployments.items, statefulSets.items)) {
    const settings = parsePodSettings(w.template.metadata?.annotations);
    const key = `${w.namespace}/${(settings.ok ? settings.value.backendSecret : undefined) ?? defaultSecret}`;
    groups.set(key, [...(groups.get(key) ?? []), workloadQueue(w)]);
  }
  return groups;
}

/** `kueuer check`'s replication lines: for each broker Secret the opted-in workloads use, their queues' or topics' replication. */
export async function replicationChecks(cluster: Cluster, defaultSecret: string): Promise<CheckResult[]> {
  let groups;
  try {
    groups = await workloadsBySecret(cluster, defaultSecret);
  } catch (err) {
    const why = err instanceof KubeTimeoutError ? { message: err.message, timedOutAfterS: err.seconds } : apiError(err);
    return [readFailure('replication of the queues unknown', { verb: 'list', resource: 'deployments.apps and statefulsets.apps' }, why)];
  }
  if (groups.size === 0) return [ok('replication of the queues: no opted-in workload')];
  const results: CheckResult[] = [];
  for (const [key, queues] of [...groups].sort(([a], [b]) => a.localeCompare(b))) {
    const [namespace, names] = key.split('/') as [string, string];
    const where = `Secret ${key}`;
    const what = `replication of ${queues.join(', ')} unknown`;
    let settings;
    try {
      // kueuer.io/backend may name several Secrets (the broker's, then e.g. a KafkaUser's and a cluster CA's): read together.
      const secrets = await Promise.all(names.split(',').map((name) => cluster.clients.core.readNamespacedSecret({ namespace, name })));
      settings = brokerSettings(secrets.map((s, i) => decodedSecret(names.split(',')[i]!, s.data)));
    } catch (err) {
      if (isKueuerError(err)) {
        results.push(fail(`${what}: ${err.message}`, 'give the workload a broker Secret Kueuer reads (docs/rabbitmq.md, docs/kafka.md)'));
        continue;
      }
      const why = err instanceof KubeTimeoutError ? { message: err.message, timedOutAfterS: err.seconds } : apiError(err);
      results.push(readFailure(`${what}: cannot read ${where}`, { verb: 'get', resource: 'secrets', namespace }, why));
      continue;
    }
    try {
      results.push(...(await brokerReplicationResults(where, settings, [...new Set(queues)].sort())));
    } catch (err) {
      results.push(
        fail(`${what} (${where}): ${(err as Error).message.split('\n')[0]}`, 'check that the broker and its management or admin API answer from here'),
      );
    }
  }
  return results;
}
