/**
 * Replication of the topics Kueuer creates, read back from the brokers:
 * the shared single broker (RF falls back to 1, with a warning naming the
 * topic) and existing topics that one broker's loss would hurt (reported,
 * never changed).
 */
import { ConfigResourceTypes, type Admin } from 'kafkajs';
import pino, { type Logger } from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parseBackend } from '../../shared/transport/backend.js';
import { createTransport, type TransportOptions } from '../../shared/transport/create-transport.js';
import { requestTopic } from '../../shared/transport/kafka/config.js';
import type { Transport } from '../../shared/transport/transport.js';
import { emptyGet } from '../helpers/envelopes.js';
import { kafkaClient } from '../helpers/kafka.js';
import { uniqueQueue, waitFor } from '../helpers/stack.js';

export interface LogLine {
  level: number;
  msg: string;
  topic?: string;
  replicationFactor?: number;
  brokers?: number;
}

/** A pino logger whose warnings and errors land in `lines`. */
export function capturingLog(): { log: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  return { log: pino({ level: 'warn' }, { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) }), lines };
}

/** Replication factor (per partition) and min.insync.replicas of a topic, as the brokers report them. */
export async function describeTopic(admin: Admin, topic: string): Promise<{ replicas: number[]; minInsync: string | undefined }> {
  const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
  const { resources } = await admin.describeConfigs({
    resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: ['min.insync.replicas'] }],
    includeSynonyms: false,
  });
  return {
    replicas: topics[0]!.partitions.map((p) => p.replicas.length),
    minInsync: resources[0]!.configEntries.find((e) => e.configName === 'min.insync.replicas')?.configValue,
  };
}

/** Opens a transport on `url` and publishes one request to a new queue: the request topic is created then. */
export async function publishOne(url: string, log: Logger, extra: Partial<TransportOptions> = {}, queue = uniqueQueue('repl')) {
  const transport = await createTransport(parseBackend(url), log, { visibilityTimeoutMs: 5000, kafkaPartitions: 2, delivery: 'at-least-once', ...extra });
  await waitFor(() => transport.isReady(), 20_000, 'the kafka transport to connect');
  const message = emptyGet(queue);
  await transport.publishRequest(queue, message, { timeoutMs: 10_000 });
  return { transport, topic: requestTopic(queue) };
}

describe('kafka topic replication on a single broker', () => {
  const kafkaUrl = inject('kafkaUrl');
  const admin = kafkaClient(kafkaUrl).admin();
  const transports: Transport[] = [];
  beforeAll(() => admin.connect());
  afterAll(async () => {
    for (const t of transports) await t.close();
    await admin.disconnect();
  });

  it('creates the request topic with RF 1 and min.insync.replicas 1, warning with the topic, the RF and the broker count', { timeout: 30_000 }, async () => {
    const { log, lines } = capturingLog();
    const { transport, topic } = await publishOne(kafkaUrl, log);
    transports.push(transport);
    expect(await describeTopic(admin, topic)).toEqual({ replicas: [1, 1], minInsync: '1' });
    const warning = lines.find((l) => l.topic === topic && l.msg.includes('replication factor 1 instead of 3'));
    expect(warning).toMatchObject({ replicationFactor: 1, brokers: 1 });
    expect(warning!.msg).toContain('the cluster has 1 broker');
  });

  it('reports an existing RF 1 topic and leaves it as it is', { timeout: 30_000 }, async () => {
    const queue = uniqueQueue('repl-existing');
    const topic = requestTopic(queue);
    await admin.createTopics({ topics: [{ topic, numPartitions: 1, replicationFactor: 1 }], waitForLeaders: true });
    const { log, lines } = capturingLog();
    const { transport } = await publishOne(kafkaUrl, log, {}, queue);
    transports.push(transport);
    expect(lines.filter((l) => l.topic === topic).map((l) => l.msg)).toEqual([
      expect.stringContaining(`Kafka topic ${topic} has replication factor 1`) as string,
    ]);
    expect(await describeTopic(admin, topic)).toEqual({ replicas: [1], minInsync: '1' });
  });
});

describe('kafka topic replication on three brokers', () => {
  const clusterUrl = inject('kafkaClusterUrl');
  const admin = kafkaClient(clusterUrl).admin();
  const transports: Transport[] = [];
  beforeAll(() => admin.connect());
  afterAll(async () => {
    for (const t of transports) await t.close();
    await admin.disconnect();
  });

  it('creates request and reply topics with RF 3 and min.insync.replicas 2, without a warning', { timeout: 60_000 }, async () => {
    const { log, lines } = capturingLog();
    const { transport, topic } = await publishOne(clusterUrl, log);
    transports.push(transport);
    expect(await describeTopic(admin, topic)).toEqual({ replicas: [3, 3], minInsync: '2' });
    const inbox = await transport.openReplyInbox(uniqueQueue('repl-inbox'), () => undefined);
    await waitFor(() => transport.isReady(), 30_000, 'the reply inbox to be set up');
    expect(await describeTopic(admin, inbox.address)).toEqual({ replicas: [3], minInsync: '2' });
    await inbox.close();
    expect(lines).toEqual([]);
  });

  it('takes the replication the options ask for', { timeout: 60_000 }, async () => {
    const { log } = capturingLog();
    const { transport, topic } = await publishOne(clusterUrl, log, { kafkaReplication: { replicationFactor: 2, minInsyncReplicas: 1 } });
    transports.push(transport);
    expect(await describeTopic(admin, topic)).toEqual({ replicas: [2, 2], minInsync: '1' });
  });

  it('reports an existing topic with min.insync.replicas 1 on three brokers, and leaves it as it is', { timeout: 60_000 }, async () => {
    const queue = uniqueQueue('repl-isr');
    const topic = requestTopic(queue);
    await admin.createTopics({ topics: [{ topic, numPartitions: 1, replicationFactor: 3 }], waitForLeaders: true });
    const { log, lines } = capturingLog();
    const { transport } = await publishOne(clusterUrl, log, {}, queue);
    transports.push(transport);
    const warnings = lines.filter((l) => l.topic === topic);
    expect(warnings.map((l) => l.msg)).toEqual([expect.stringContaining(`Kafka topic ${topic} has min.insync.replicas 1`) as string]);
    expect(await describeTopic(admin, topic)).toEqual({ replicas: [3], minInsync: '1' });
  });
});
