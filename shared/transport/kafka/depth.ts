/**
 * Kafka's queue depth for the autoscaler: lag as KEDA computes it (latest −
 * committed offset, summed over partitions); in-flight requests are not
 * committed yet, so they count. Reads with an admin client alone.
 */
import type { Logger } from 'pino';
import type { QueueDepth, QueueDepthReader } from '../transport.js';
import { KafkaClient } from './client.js';
import { consumerGroup, requestTopic, type KafkaSpec } from './config.js';

/** KEDA's Kafka lag: latest offset minus committed offset, summed over partitions. */
export function computeLag(
  latest: ReadonlyArray<{ partition: number; offset: string; low?: string }>,
  committed: ReadonlyArray<{ partition: number; offset: string }>,
): number {
  let lag = 0;
  for (const { partition, offset, low } of latest) {
    const end = Number(offset);
    const c = committed.find((x) => x.partition === partition);
    // No commit yet: the group starts from the earliest offset, so all of it is lag (KEDA with offsetResetPolicy earliest).
    const at = c && Number(c.offset) >= 0 ? Number(c.offset) : Number(low ?? 0);
    lag += Math.max(0, end - at);
  }
  return lag;
}

export class KafkaDepth implements QueueDepthReader {
  readonly kind = 'kafka';
  private closed = false;
  private constructor(private readonly client: KafkaClient) {}

  /** Starts connecting and returns at once; reads before the admin client is connected fail and are retried by the next poll. */
  static async connect(spec: KafkaSpec, log: Logger): Promise<KafkaDepth> {
    const client = new KafkaClient(spec, log.child({ backend: 'kafka', brokers: spec.brokers.join(',') }));
    const depth = new KafkaDepth(client);
    void client.connectWithRetry(async () => {
      if (!depth.closed) await client.admin.connect();
    });
    return depth;
  }

  /** The backlog and partition count of a queue; no backlog while its topic does not exist. */
  async read(queue: string): Promise<QueueDepth> {
    const { admin } = this.client;
    const topic = requestTopic(queue);
    // Asking for offsets of a missing topic only fails after kafkajs's retries; the topic list answers at once.
    if (!(await admin.listTopics()).includes(topic)) return { backlog: 0 };
    const latest = await admin.fetchTopicOffsets(topic);
    const [committed] = await admin.fetchOffsets({ groupId: consumerGroup(queue), topics: [topic] });
    const backlog = computeLag(
      latest.map((p) => ({ partition: p.partition, offset: p.high, low: p.low })),
      committed?.partitions ?? [],
    );
    return { backlog, partitions: latest.length };
  }

  close(): Promise<void> {
    this.closed = true;
    return this.client.admin.disconnect().catch(() => undefined);
  }
}
