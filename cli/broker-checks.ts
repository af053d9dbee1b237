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
import { Agent, fetch as undiciFetch, type Response as UndiciResponse } from 'undici';
import { parsePodSettings } from '../shared/annotations.js';
import { brokerSettings, decodedSecret } from '../shared/broker-secret/shapes.js';
import { isKueuerError } from '../shared/errors.js';
import type { Cluster } from '../shared/kube/cluster.js';
import { parseBackend } from '../shared/transport/backend.js';
import { managementUnreachable, managementUrlsFor } from '../shared/transport/amqp/depth.js';
import { rabbitmqCa, trustedCas } from '../shared/transport/amqp/tls.js';
import { DEFAULT_TOPIC_REPLICATION, kafkaAuth, requestTopic, type KafkaSpec, type TopicReplication } from '../shared/transport/kafka/config.js';
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
  /** Messages in it (ready + unacknowledged), as the management API counts them. */
  messages?: number;
  /** A `<queue>.dead-letter` queue: nothing consumes it, it keeps the copies of failed requests for the user. */
  deadLetter?: boolean;
}

/** The setting to undo first: a component still set to classic would declare the deleted queue classic again. */
const QUORUM_SETTING = 'remove kueuer.io/queue-type: classic from its workload';
/** Copies `kueuer check` asks rabbitmqadmin for at least: the count it read may be behind the queue. */
const EXPORT_AT_LEAST = 1000;
const MIGRATION_DOC = '(docs/rabbitmq.md, "An existing queue of another type")';

/**
 * A value as one shell word, safe to paste: the vhost comes from a workload owner's broker Secret,
 * so `prod;curl x|sh` must reach rabbitmqctl as a name, not run.
 */
export function shellWord(value: string): string {
  return /^[A-Za-z0-9._/:=@%+-]+$/.test(value) ? value : `'${value.replaceAll("'", `'\\''`)}'`;
}

/**
 * How to make a classic queue a quorum queue (verified on a 3-node cluster under load: 400 of 400 answered).
 * A request queue: deleted once empty while everything runs (`--if-empty` is checked by the broker at the
 * deletion, and refuses to delete the quorum queue that replaced it); the sidecars, whose consumer the
 * broker cancels, and the responder, whose next publish is returned, declare it again at once. A
 * dead-letter queue: nothing empties it, so its copies are kept first, if wanted; the next copy declares it.
 */
function classicMigration(q: QueueFound, vhost: string): string {
  const ctlVhost = vhost === '/' ? '' : `--vhost ${shellWord(vhost)} `;
  if (!q.deadLetter) {
    return (
      `migrate it to a quorum queue, without stopping anything: ${QUORUM_SETTING} and KUEUER_RABBITMQ_QUEUE_TYPE=classic from the responder and the sidecars, and let them roll out (they keep using the classic queue meanwhile), ` +
      `then delete it once it is empty: rabbitmqctl delete_queue ${ctlVhost}--if-empty ${q.name} (repeat while it answers "Queue is not empty"); ` +
      `its sidecars and the responder declare it again as a quorum queue at once ${MIGRATION_DOC}`
    );
  }
  // The management API's count lags the queue by its statistics interval (0 read for 3 copies there): never "empty", always kept first.
  const keep = `deleting the queue deletes its copies, so keep them first if you need them (rabbitmqadmin ${vhost === '/' ? '' : `--vhost=${shellWord(vhost)} `}get queue=${q.name} count=${Math.max(q.messages ?? 0, EXPORT_AT_LEAST)} ackmode=ack_requeue_true -f pretty_json > ${q.name}.json; repeat with a larger count while it returns as many as asked), then`;
  return (
    `migrate it to a quorum queue: ${QUORUM_SETTING} (and KUEUER_RABBITMQ_QUEUE_TYPE=classic from its sidecars) and let it roll out; ${keep} delete it: rabbitmqctl delete_queue ${ctlVhost}${q.name}; ` +
    `the sidecars declare it again as a quorum queue with the next copy ${MIGRATION_DOC}`
  );
}

/** What a node loss costs a classic queue: its clients' requests, or a dead-letter queue's copies. */
function classicLoss(q: QueueFound, nodes: number, broker: string): string {
  const where = `RabbitMQ queue ${q.name} (${broker}) is a classic queue on a ${nodes}-node cluster: it lives on ${q.node ?? 'one node'} only`;
  if (!q.deadLetter) return `${where} and is lost to every client while that node is down`;
  const counted = q.messages === undefined ? '' : ` (${q.messages} at the management API's last count)`;
  return `${where}: while that node is down, the copies of failed requests it holds${counted} are out of reach and no new one can be written`;
}

/** The queue types of one broker's queues on a cluster of `nodes` nodes: one FAIL per classic queue when there are several. */
export function rabbitQueueResults(broker: string, queues: readonly QueueFound[], nodes: number, vhost = '/'): CheckResult[] {
  const results: CheckResult[] = [];
  const fine: string[] = [];
  for (const q of queues) {
    if (q.type === undefined) fine.push(`${q.name} not declared yet`);
    else if (q.type === 'classic' && nodes > 1) results.push(fail(classicLoss(q, nodes, broker), classicMigration(q, vhost)));
    else fine.push(`${q.name} ${q.type}${q.type === 'classic' ? ' (single node: no other node to fail over to)' : ''}`);
  }
  if (fine.length > 0) results.unshift(ok(`RabbitMQ queues (${broker}, ${nodes} node${nodes === 1 ? '' : 's'}): ${fine.join(', ')}`));
  return results;
}

/** A partition of an existing topic: its leader and replicas (broker ids). */
export interface PartitionFound {
  partition: number;
  leader: number;
  replicas: number[];
}

/** The brokers `kueuer check` read, and how the commands it prints reach them. */
export interface KafkaClusterFound {
  brokerIds: number[];
  /** The bootstrap addresses for `--bootstrap-server` (the Secret's). */
  bootstrap: string;
  /** TLS or SASL: the Kafka tools need the client's settings (`--command-config`). */
  secured?: boolean;
}

/** The replicas Kueuer creates its topics with (DEFAULT_TOPIC_REPLICATION), fewer on a smaller cluster. */
function reassignment(topic: string, partitions: readonly PartitionFound[], brokerIds: readonly number[]): { json: string; replicas: number } {
  const ids = [...brokerIds].sort((a, b) => a - b);
  const replicas = Math.min(DEFAULT_TOPIC_REPLICATION.replicationFactor, ids.length);
  const plan = [...partitions]
    .sort((a, b) => a.partition - b.partition)
    .map((p) => {
      // The leader first (no leadership moves), then the brokers after it in id order, wrapping round.
      const first = p.leader >= 0 ? p.leader : p.replicas[0]!;
      const rotated = [...ids.filter((id) => id > first), ...ids.filter((id) => id < first)];
      const chosen = [...new Set([first, ...p.replicas, ...rotated])].slice(0, replicas);
      return { topic, partition: p.partition, replicas: chosen };
    });
  return { json: JSON.stringify({ version: 1, partitions: plan }), replicas };
}

/** The command that fixes a topic's single point of failure, runnable as printed (docs/kafka.md). */
function topicFix(name: string, found: TopicReplication, partitions: readonly PartitionFound[], cluster: KafkaClusterFound): string {
  const tool = (cmd: string): string => `${cmd} --bootstrap-server ${cluster.bootstrap}${cluster.secured ? ' --command-config client.properties' : ''}`;
  const minIsr = `kafka-configs.sh --bootstrap-server ${cluster.bootstrap}${cluster.secured ? ' --command-config client.properties' : ''} --alter --entity-type topics --entity-name ${name} --add-config min.insync.replicas=2`;
  const secured = cluster.secured ? " (client.properties: the cluster's TLS/SASL client settings, docs/kafka.md)" : '';
  if (found.replicationFactor > 1) return `Kueuer does not change existing topics: ${minIsr}${secured}`;
  const plan = reassignment(name, partitions, cluster.brokerIds);
  return (
    `Kueuer does not change existing topics: give each partition ${plan.replicas} replicas: echo '${plan.json}' > raise.json; ` +
    `${tool('kafka-reassign-partitions.sh')} --reassignment-json-file raise.json --execute, then the same with --verify until every partition is completed` +
    `${found.minInsyncReplicas < 2 ? `; then ${minIsr}` : ''}${secured} (docs/kafka.md, "Raising an existing topic's replication")`
  );
}

/** Replication of one broker's topics on a cluster: a FAIL per single point of failure when it has several brokers. */
export function kafkaTopicResults(
  broker: string,
  topics: ReadonlyArray<{ name: string; replication: TopicReplication | undefined; partitions: readonly PartitionFound[] }>,
  cluster: KafkaClusterFound,
): CheckResult[] {
  const brokers = cluster.brokerIds.length;
  const results: CheckResult[] = [];
  const fine: string[] = [];
  for (const t of topics) {
    if (!t.replication) {
      fine.push(`${t.name} not created yet`);
      continue;
    }
    // At most one problem: min.insync.replicas counts only once the RF is above 1.
    const [problem] = brokers > 1 ? singlePointsOfFailure(t.name, t.replication, brokers) : [];
    if (problem) {
      const what = problem.split('; Kueuer does not change existing topics: ')[0]!;
      results.push(fail(`${what} (${broker}, ${brokers} brokers)`, topicFix(t.name, t.replication, t.partitions, cluster)));
    } else {
      fine.push(
        `${t.name} RF ${t.replication.replicationFactor}, min.insync.replicas ${t.replication.minInsyncReplicas}${brokers === 1 ? ' (single broker: no other broker to fail over to)' : ''}`,
      );
    }
  }
  if (fine.length > 0) results.unshift(ok(`Kafka topics (${broker}, ${brokers} broker${brokers === 1 ? '' : 's'}): ${fine.join(', ')}`));
  return results;
}

/**
 * Reads the queues' types and message counts and the cluster's node count from RabbitMQ's management
 * API: from each management node in turn (KUEUER_RABBITMQ_MANAGEMENT_URL's, else each AMQP node's), as
 * the autoscaler does, so one node down does not hide the cluster; only when none answers does the read fail.
 */
export async function readRabbitQueues(
  amqpUrl: string,
  managementUrl: string | undefined,
  names: readonly string[],
  ca?: string,
): Promise<{ nodes: number; vhost: string; queues: QueueFound[] }> {
  // A private CA (the broker Secret's ca.crt, KUEUER_RABBITMQ_CA) is trusted over https as the AMQP connection trusts it:
  // a RabbitmqCluster with spec.tls serves its management API with the same certificate.
  const tls = ca === undefined ? undefined : new Agent({ connect: { ca: trustedCas(ca) } });
  const errors: string[] = [];
  try {
    for (const mgmt of managementUrlsFor(amqpUrl, managementUrl)) {
      try {
        return await readRabbitQueuesFrom(mgmt, names, tls);
      } catch (err) {
        errors.push((err as Error).message);
      }
    }
  } finally {
    await tls?.close();
  }
  throw new Error(errors.join('; '));
}

/** One management node, as the autoscaler's depth reads address it. */
type ManagementNode = ReturnType<typeof managementUrlsFor>[number];

async function readRabbitQueuesFrom(
  mgmt: ManagementNode,
  names: readonly string[],
  tls: Agent | undefined,
): Promise<{ nodes: number; vhost: string; queues: QueueFound[] }> {
  const get = async (path: string): Promise<unknown> => {
    let res: Response | UndiciResponse;
    try {
      const init = { headers: { authorization: mgmt.authorization }, signal: AbortSignal.timeout(5000) };
      const url = `${mgmt.base}/api/${path}`;
      res = tls && url.startsWith('https:') ? await undiciFetch(url, { ...init, dispatcher: tls }) : await fetch(url, init);
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
      const q = (await get(`queues/${encodeURIComponent(mgmt.vhost)}/${encodeURIComponent(name)}`)) as
        { type?: string; node?: string; messages?: number } | undefined;
      return {
        name,
        type: q ? (q.type ?? 'classic') : undefined,
        ...(q?.node ? { node: q.node } : {}),
        ...(typeof q?.messages === 'number' ? { messages: q.messages } : {}),
      };
    }),
  );
  return { nodes, vhost: mgmt.vhost, queues };
}

/** Reads the request topics' and the queues' reply topics' replication and partitions, and the live brokers, with the Secret's credentials. */
export async function readKafkaTopics(
  spec: KafkaSpec,
  settings: Readonly<Record<string, string>>,
  queues: readonly string[],
): Promise<{
  brokerIds: number[];
  topics: Array<{ name: string; replication: TopicReplication | undefined; partitions: PartitionFound[] }>;
}> {
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
    const brokerIds = (await admin.describeCluster()).brokers.map((b) => b.nodeId);
    const existing = new Set(await admin.listTopics());
    const names = queues.flatMap((q) => [requestTopic(q), ...[...existing].filter((t) => t.startsWith(`kueuer.reply.${q}.`)).sort()]);
    const topics = [];
    for (const name of names) {
      if (!existing.has(name)) {
        topics.push({ name, replication: undefined, partitions: [] });
        continue;
      }
      const replication = await readReplication(admin, name);
      const { topics: meta } = await admin.fetchTopicMetadata({ topics: [name] });
      const partitions = (meta[0]?.partitions ?? []).map((p) => ({ partition: p.partitionId, leader: p.leader, replicas: p.replicas }));
      topics.push({ name, replication, partitions });
    }
    return { brokerIds, topics };
  } finally {
    await admin.disconnect();
  }
}

/** The checks for one broker Secret's settings and the queues of the workloads that use it. */
export async function brokerReplicationResults(where: string, settings: Readonly<Record<string, string>>, queues: readonly string[]): Promise<CheckResult[]> {
  const backend = parseBackend(settings.KUEUER_BACKEND ?? '');
  if (backend.kind === 'amqp') {
    const deadLetters = new Set(queues.map(deadLetterQueue));
    // The CA of the Secret's own value only: a KUEUER_RABBITMQ_CA_FILE is a path inside the pods, never read here.
    const ca = rabbitmqCa(undefined, settings);
    const read = await readRabbitQueues(backend.url, settings.KUEUER_RABBITMQ_MANAGEMENT_URL, [...queues.flatMap((q) => [q, deadLetterQueue(q)])], ca);
    const found = read.queues.map((q) => (deadLetters.has(q.name) ? { ...q, deadLetter: true } : q));
    return rabbitQueueResults(where, found, read.nodes, read.vhost);
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
    const auth = kafkaAuth(backend.spec, settings);
    const cluster = { brokerIds: read.brokerIds, bootstrap: backend.spec.brokers.join(','), secured: Boolean(auth.ssl || auth.sasl) };
    return kafkaTopicResults(where, read.topics, cluster);
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
