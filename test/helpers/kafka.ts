/** Reading the real broker's state directly, to check what Kueuer committed. */
import { Kafka, logLevel } from 'kafkajs';
// The test's own clients get the same guard as Kueuer's (no TimeoutNegativeWarning on Node 24).
import '../../shared/transport/kafka/client.js';
import { metaFromHeaders } from '../../shared/transport/kafka/records.js';

export interface SeenRecord {
  topic: string;
  partition: number;
  offset: bigint;
  key: string;
  /** The record's headers (the envelope's metadata). */
  meta: Record<string, string>;
}

export function kafkaClient(kafkaUrl: string): Kafka {
  return new Kafka({ brokers: kafkaUrl.replace('kafka://', '').split(','), logLevel: logLevel.NOTHING, clientId: 'kueuer-test' });
}

/** Until `count` brokers are registered and unfenced (a started node listens before it is). */
export async function waitForBrokers(kafkaUrl: string, count: number, timeoutMs: number): Promise<void> {
  const admin = kafkaClient(kafkaUrl).admin();
  const until = Date.now() + timeoutMs;
  let seen = 0;
  try {
    for (;;) {
      try {
        await admin.connect();
        seen = (await admin.describeCluster()).brokers.length;
        if (seen >= count) return;
      } catch {
        // not answering yet
      }
      if (Date.now() > until) throw new Error(`${kafkaUrl}: ${seen} of ${count} Kafka brokers registered after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 250));
    }
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/**
 * Every committed record of the topics (read_committed: records of aborted
 * or still-open transactions are not seen), read by a throwaway group until
 * nothing new arrives for `quietMs`.
 */
export async function readCommitted(kafka: Kafka, topics: string[], quietMs = 2000): Promise<SeenRecord[]> {
  const groupId = `kueuer-test-reader-${Math.random().toString(16).slice(2)}`;
  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 100 });
  const seen: SeenRecord[] = [];
  let last = Date.now();
  let joined = false;
  consumer.on(consumer.events.GROUP_JOIN, () => {
    joined = true;
    last = Date.now();
  });
  await consumer.connect();
  await consumer.subscribe({ topics, fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ topic, partition, message }) => {
      seen.push({ topic, partition, offset: BigInt(message.offset), key: message.key?.toString() ?? '', meta: metaFromHeaders(message.headers) });
      last = Date.now();
    },
  });
  while (!joined || Date.now() - last < quietMs) await new Promise((r) => setTimeout(r, 100));
  await consumer.disconnect();
  const admin = kafka.admin();
  await admin.connect();
  await admin.deleteGroups([groupId]).catch(() => undefined);
  await admin.disconnect();
  return seen;
}

/** The group's committed position per partition of a topic (0 where it has none). */
export async function committedPositions(kafka: Kafka, groupId: string, topic: string): Promise<Map<number, bigint>> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const [offsets] = await admin.fetchOffsets({ groupId, topics: [topic] });
    return new Map((offsets?.partitions ?? []).map((p) => [p.partition, p.offset === '-1' ? 0n : BigInt(p.offset)]));
  } finally {
    await admin.disconnect();
  }
}

export async function topicsWithPrefix(kafka: Kafka, prefix: string): Promise<string[]> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return (await admin.listTopics()).filter((t) => t.startsWith(prefix));
  } finally {
    await admin.disconnect();
  }
}

/**
 * Takes over this transactional id: the broker aborts any transaction its previous holder left open.
 * kafkajs 2.2.4 registers the transactional id (InitProducerId with it) only when a transaction
 * begins, not on connect, so one is begun and aborted.
 */
export async function fenceTransactionalId(kafka: Kafka, transactionalId: string): Promise<void> {
  const producer = kafka.producer({ transactionalId, idempotent: true, maxInFlightRequests: 1, retry: { initialRetryTime: 50, retries: 30 } });
  await producer.connect();
  const tx = await producer.transaction();
  await tx.abort();
  await producer.disconnect();
}

/** Java's String.hashCode, with which Kafka places a group or transactional id on a partition of its internal topic. */
function javaStringHash(s: string): number {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (Math.imul(31, h) + s.charCodeAt(i)) | 0;
  return h;
}

/**
 * The partition of Kafka's internal topic (`__consumer_offsets` for a consumer group,
 * `__transaction_state` for a transactional id) whose leader coordinates the id:
 * Utils.abs(id.hashCode) % partitions, as the broker computes it.
 */
export function coordinatorPartition(id: string, partitions: number): number {
  const h = javaStringHash(id);
  return (h === -2147483648 ? 0 : Math.abs(h)) % partitions;
}

/** Per topic, the leader of each partition (indexed by partition id). */
export async function partitionLeaders(kafka: Kafka, topics: string[]): Promise<Map<string, number[]>> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const { topics: meta } = await admin.fetchTopicMetadata({ topics });
    return new Map(
      meta.map((t) => {
        const leaders: number[] = [];
        for (const p of t.partitions) leaders[p.partitionId] = p.leader;
        return [t.name, leaders];
      }),
    );
  } finally {
    await admin.disconnect();
  }
}

/** Until every partition of the topics has all its replicas in sync (after a broker restart, before the next one). */
export async function waitInSync(kafka: Kafka, topics: string[], timeoutMs: number): Promise<void> {
  const admin = kafka.admin();
  const until = Date.now() + timeoutMs;
  let behind = 'no answer';
  try {
    for (;;) {
      try {
        await admin.connect();
        const { topics: meta } = await admin.fetchTopicMetadata({ topics });
        const lagging = meta.flatMap((t) => t.partitions.filter((p) => p.isr.length < p.replicas.length).map((p) => `${t.name}/${p.partitionId}`));
        if (lagging.length === 0) return;
        behind = lagging.join(', ');
      } catch (err) {
        behind = (err as Error).message;
      }
      if (Date.now() > until) throw new Error(`replicas not in sync after ${timeoutMs} ms: ${behind}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}
