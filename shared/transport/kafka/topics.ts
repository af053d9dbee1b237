/**
 * Creating the topics Kueuer owns (request topics, reply topics and the
 * queues' cancellation topics) with the replication the user asked for, and reporting existing topics that would
 * lose records with one broker: Kueuer never changes a topic it finds.
 *
 * Replication factor `--kafka-replication-factor` (3), fewer only when the
 * cluster has fewer brokers, with a warning; `min.insync.replicas`
 * `--kafka-min-insync-replicas` (2), capped at the replication factor.
 * Records are produced with acks=all, so a confirmed record is on at least
 * `min.insync.replicas` brokers.
 */
import type { Admin, ConfigResourceTypes } from 'kafkajs';
import type { Logger } from 'pino';
import { KueuerError } from '../../errors.js';
import { CANCEL_RETENTION_MS } from '../cancelled-ids.js';
import { REPLY_ADDRESS_PREFIX } from '../transport.js';
import type { TopicReplication } from './config.js';

/**
 * A queue's cancellations (kafka/cancellations.ts): `kueuer.reply.<queue>.cancel`, beside its
 * results topic `kueuer.reply.<queue>.async`, in the reply namespace, where no request queue may
 * be (shared/queue-names.ts), never an inbox (those end in 16 hex digits, the only topics the
 * sweeper deletes), and no other queue's: a suffix of its own. Not RabbitMQ's `kueuer_cancel.<queue>`:
 * Kafka refuses a topic whose name equals another's once `.` and `_` are made one (metric names),
 * so that one would collide with the request topic `kueuer.cancel.<queue>` of namespace `cancel`.
 */
export const cancelTopic = (queue: string): string => `${REPLY_ADDRESS_PREFIX}${queue}.cancel`;

/**
 * A cancellation topic's own settings: kept by time (the longest request deadline) and size,
 * never compacted (each id is written once; a time bound drops all of them alike), in 1 MiB
 * segments rolled at least hourly, so whole old segments can go; records of 1 MiB at most (a
 * tick's batch of cancels, about 100 bytes each), not the request topics' 101 MiB.
 */
export const CANCEL_TOPIC_CONFIG: Record<string, string> = {
  'cleanup.policy': 'delete',
  'retention.ms': String(CANCEL_RETENTION_MS),
  'retention.bytes': String(16 * 1024 * 1024),
  'segment.bytes': String(1024 * 1024),
  'segment.ms': String(3_600_000),
  'max.message.bytes': String(1024 * 1024),
};

/** Topics Kueuer creates accept records up to 101 MiB: the largest --max-body / --max-response plus headers (Kafka's default is 1 MiB). */
const MAX_MESSAGE_BYTES = 101 * 1024 * 1024;

/** ConfigResourceTypes.TOPIC: kafkajs is CommonJS and Node's ESM loader does not see that enum as a named export. */
const TOPIC_RESOURCE: ConfigResourceTypes = 2;

/** What a new topic gets on a cluster of `brokers` live brokers. */
export function replicationOn(wanted: TopicReplication, brokers: number): TopicReplication {
  const replicationFactor = Math.max(1, Math.min(wanted.replicationFactor, brokers));
  return { replicationFactor, minInsyncReplicas: Math.min(wanted.minInsyncReplicas, replicationFactor) };
}

/** Why an existing topic does not survive the loss of one broker (empty when it does). */
export function singlePointsOfFailure(topic: string, found: TopicReplication, brokers: number): string[] {
  const problems: string[] = [];
  if (found.replicationFactor <= 1) {
    problems.push(
      `Kafka topic ${topic} has replication factor ${found.replicationFactor}: its records are lost or unreachable while its broker is down; ` +
        'Kueuer does not change existing topics: raise it with kafka-reassign-partitions.sh (docs/kafka.md, "Raising an existing topic\'s replication"; kueuer check prints the commands for it)',
    );
  }
  if (brokers > 1 && found.replicationFactor > 1 && found.minInsyncReplicas < 2) {
    problems.push(
      `Kafka topic ${topic} has min.insync.replicas ${found.minInsyncReplicas}: a confirmed record may exist on one broker only; ` +
        `Kueuer does not change existing topics: set it with kafka-configs.sh --bootstrap-server <broker:port> --alter --entity-type topics --entity-name ${topic} --add-config min.insync.replicas=2 ` +
        '(add --command-config client.properties on a TLS or SASL cluster; kueuer check prints it runnable)',
    );
  }
  return problems;
}

/** The replication factor (fewest replicas of any partition) and min.insync.replicas of an existing topic. */
export async function readReplication(admin: Admin, topic: string): Promise<TopicReplication> {
  const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
  const partitions = topics[0]?.partitions ?? [];
  const replicationFactor = Math.min(...partitions.map((p) => p.replicas.length));
  const { resources } = await admin.describeConfigs({
    resources: [{ type: TOPIC_RESOURCE, name: topic, configNames: ['min.insync.replicas'] }],
    includeSynonyms: false,
  });
  const minInsyncReplicas = Number(resources[0]?.configEntries.find((e) => e.configName === 'min.insync.replicas')?.configValue ?? 1);
  return { replicationFactor, minInsyncReplicas };
}

async function liveBrokers(admin: Admin): Promise<number> {
  return (await admin.describeCluster()).brokers.length;
}

/**
 * Creates the topic with the replication `wanted` asks for (fewer replicas
 * on a smaller cluster, with a warning) and `config` over the defaults; a
 * topic that already exists is checked and reported, never changed.
 */
export async function createTopic(
  admin: Admin,
  log: Logger,
  topic: string,
  partitions: number,
  wanted: TopicReplication,
  config: Record<string, string> = {},
): Promise<void> {
  const brokers = await liveBrokers(admin);
  const replication = replicationOn(wanted, brokers);
  let created: boolean;
  try {
    // false when the topic exists already (kafkajs swallows TOPIC_ALREADY_EXISTS).
    created = await admin.createTopics({
      topics: [
        {
          topic,
          numPartitions: partitions,
          replicationFactor: replication.replicationFactor,
          configEntries: Object.entries({
            'max.message.bytes': String(MAX_MESSAGE_BYTES),
            ...config,
            'min.insync.replicas': String(replication.minInsyncReplicas),
          }).map(([name, value]) => ({ name, value })),
        },
      ],
      waitForLeaders: true,
    });
  } catch (err) {
    const type = (err as { type?: string }).type ?? '';
    if (type === 'TOPIC_AUTHORIZATION_FAILED' || type === 'CLUSTER_AUTHORIZATION_FAILED') {
      throw new KueuerError(
        'KUEUER_ERR_BROKER_UNAVAILABLE',
        `not allowed to create Kafka topic ${topic}: create it beforehand (see docs/kafka.md) or grant CREATE on it`,
      );
    }
    throw err;
  }
  if (!created) return reportExisting(admin, log, topic, brokers);
  if (replication.replicationFactor < wanted.replicationFactor) {
    log.warn(
      { topic, replicationFactor: replication.replicationFactor, minInsyncReplicas: replication.minInsyncReplicas, brokers },
      `created Kafka topic ${topic} with replication factor ${replication.replicationFactor} instead of ${wanted.replicationFactor}: ` +
        `the cluster has ${brokers} broker${brokers === 1 ? '' : 's'}; losing one loses what only it holds`,
    );
  }
}

/** Warns about an existing topic that one broker's loss would hurt; reading it may be forbidden, which is said and ignored. */
async function reportExisting(admin: Admin, log: Logger, topic: string, brokers: number): Promise<void> {
  let found: TopicReplication;
  try {
    found = await readReplication(admin, topic);
  } catch (err) {
    log.warn({ topic, err: (err as Error).message }, `cannot read the replication of Kafka topic ${topic}; not checked`);
    return;
  }
  for (const problem of singlePointsOfFailure(topic, found, brokers)) log.warn({ topic, ...found, brokers }, problem);
}
