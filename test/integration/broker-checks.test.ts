/**
 * kueuer check's replication lines against real brokers: the shared single
 * RabbitMQ node and Kafka broker, the 3-node RabbitMQ cluster and the three
 * KRaft brokers. On one node a classic queue or an RF 1 topic has no replica
 * to lose, so it is reported and not failed (the choice for a single node);
 * on the clusters a classic queue and an RF 1 topic FAIL.
 */
import amqp from 'amqplib';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { brokerReplicationResults, readRabbitQueues } from '../../cli/broker-checks.js';
import { requestTopic } from '../../shared/transport/kafka/config.js';
import { kafkaClient } from '../helpers/kafka.js';
import { brokers, uniqueQueue } from '../helpers/stack.js';

const amqpUrl = (): string => brokers().amqp;
const managementUrl = (): string => `http://127.0.0.1:${Number(new URL(amqpUrl()).port) + 3}`;

describe('RabbitMQ queue types, read from the management API', () => {
  const queue = uniqueQueue('check-types');
  afterAll(async () => {
    const conn = await amqp.connect(amqpUrl());
    const ch = await conn.createChannel();
    for (const q of [queue, `${queue}.dead-letter`]) await ch.deleteQueue(q);
    await conn.close();
  });

  it('reads a classic request queue and a quorum dead-letter queue on the single node, and reports them without failing', { timeout: 30_000 }, async () => {
    const conn = await amqp.connect(amqpUrl());
    const ch = await conn.createChannel();
    await ch.assertQueue(queue, { durable: true, arguments: { 'x-queue-type': 'classic' } });
    await ch.assertQueue(`${queue}.dead-letter`, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
    await conn.close();

    const read = await readRabbitQueues(amqpUrl(), managementUrl(), [queue, `${queue}.dead-letter`, `${queue}.absent`]);
    expect(read.nodes).toBe(1);
    expect(read.queues.map((q) => [q.name, q.type])).toEqual([
      [queue, 'classic'],
      [`${queue}.dead-letter`, 'quorum'],
      [`${queue}.absent`, undefined],
    ]);
    const results = await brokerReplicationResults('Secret t/b', { KUEUER_BACKEND: amqpUrl(), KUEUER_RABBITMQ_MANAGEMENT_URL: managementUrl() }, [queue]);
    expect(results).toEqual([
      { ok: true, what: `RabbitMQ queues (Secret t/b, 1 node): ${queue} classic (single node: no other node to fail over to), ${queue}.dead-letter quorum` },
    ]);
  });
});

describe('RabbitMQ queue types on the 3-node cluster', () => {
  const cluster = inject('amqpCluster');
  const queue = uniqueQueue('check-cluster');
  const firstNode = (): number => Number(/@[^:]+:(\d+)/.exec(cluster.nodes)![1]);
  afterAll(async () => {
    if (!cluster.nodes) return;
    const conn = await amqp.connect(cluster.nodes.split(',')[0]!);
    const ch = await conn.createChannel();
    for (const q of [queue, `${queue}.dead-letter`]) await ch.deleteQueue(q);
    await conn.close();
  });

  it('FAILs a classic request queue, naming it, its node and the migration; its quorum dead-letter queue passes', { timeout: 60_000 }, async () => {
    if (!cluster.nodes) throw new Error('the global setup started no RabbitMQ cluster for this run');
    const conn = await amqp.connect(cluster.nodes.split(',')[0]!);
    const ch = await conn.createChannel();
    await ch.assertQueue(queue, { durable: true, arguments: { 'x-queue-type': 'classic' } });
    await ch.assertQueue(`${queue}.dead-letter`, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
    await conn.close();
    // scripts/dev/rabbitmq-cluster.sh: each node's management API on its AMQP port + 20.
    const settings = { KUEUER_BACKEND: cluster.nodes, KUEUER_RABBITMQ_MANAGEMENT_URL: `http://127.0.0.1:${firstNode() + 20}` };
    const results = await brokerReplicationResults('Secret t/b', settings, [queue]);
    expect(results).toEqual([
      { ok: true, what: `RabbitMQ queues (Secret t/b, 3 nodes): ${queue}.dead-letter quorum` },
      {
        ok: false,
        what: expect.stringMatching(
          new RegExp(`^RabbitMQ queue ${queue} \\(Secret t/b\\) is a classic queue on a 3-node cluster: it lives on kueuer-cluster1-\\d+@localhost only`),
        ),
        fix: expect.stringContaining(`rabbitmqctl delete_queue --if-empty ${queue} `),
      },
    ]);
  });

  it(
    'FAILs a classic dead-letter queue with the copies it holds, and reads the cluster through the next management node when the first is down',
    { timeout: 60_000 },
    async () => {
      if (!cluster.nodes) throw new Error('the global setup started no RabbitMQ cluster for this run');
      const dlq = uniqueQueue('check-dlq');
      const conn = await amqp.connect(cluster.nodes.split(',')[0]!);
      const ch = await conn.createConfirmChannel();
      try {
        await ch.assertQueue(dlq, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
        await ch.assertQueue(`${dlq}.dead-letter`, { durable: true, arguments: { 'x-queue-type': 'classic' } });
        for (const body of ['a', 'b']) ch.sendToQueue(`${dlq}.dead-letter`, Buffer.from(body), { persistent: true });
        await ch.waitForConfirms();
        // A management node that is down first (nothing listens on the first AMQP port + 27), then the second node's.
        const settings = {
          KUEUER_BACKEND: cluster.nodes,
          KUEUER_RABBITMQ_MANAGEMENT_URL: `http://127.0.0.1:${firstNode() + 27},http://127.0.0.1:${firstNode() + 21}`,
        };
        // The management API counts messages once its statistics come round (collect_statistics_interval, 1 s).
        let results = await brokerReplicationResults('Secret t/b', settings, [dlq]);
        for (let i = 0; i < 20 && !results.some((r) => !r.ok && r.what.includes('(2 at the management')); i++) {
          await new Promise((resolve) => setTimeout(resolve, 500));
          results = await brokerReplicationResults('Secret t/b', settings, [dlq]);
        }
        expect(results).toEqual([
          { ok: true, what: `RabbitMQ queues (Secret t/b, 3 nodes): ${dlq} quorum` },
          {
            ok: false,
            what: expect.stringMatching(
              new RegExp(
                `^RabbitMQ queue ${dlq}\\.dead-letter \\(Secret t/b\\) is a classic queue on a 3-node cluster: it lives on kueuer-cluster1-\\d+@localhost only: while that node is down, the copies of failed requests it holds \\(2 at the management API's last count\\) are out of reach`,
              ),
            ),
            fix: expect.stringContaining(
              `rabbitmqadmin get queue=${dlq}.dead-letter count=1000 ackmode=ack_requeue_true -f pretty_json > ${dlq}.dead-letter.json; repeat with a larger count while it returns as many as asked), then delete it: rabbitmqctl delete_queue ${dlq}.dead-letter;`,
            ),
          },
        ]);
      } finally {
        for (const q of [dlq, `${dlq}.dead-letter`]) await ch.deleteQueue(q);
        await conn.close();
      }
    },
  );
});

describe('Kafka topic replication, read with the admin API', () => {
  const created: Array<{ url: string; topic: string }> = [];
  afterAll(async () => {
    for (const { url, topic } of created) {
      const admin = kafkaClient(url).admin();
      await admin.connect();
      await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
      await admin.disconnect();
    }
  });

  async function createTopic(url: string, queue: string, replicationFactor: number, minIsr: number): Promise<string> {
    const topic = requestTopic(queue);
    const admin = kafkaClient(url).admin();
    await admin.connect();
    await admin.createTopics({
      topics: [{ topic, numPartitions: 2, replicationFactor, configEntries: [{ name: 'min.insync.replicas', value: String(minIsr) }] }],
      waitForLeaders: true,
    });
    await admin.disconnect();
    created.push({ url, topic });
    return topic;
  }

  it('reports an RF 1 topic on a single broker without failing', { timeout: 60_000 }, async () => {
    const url = inject('kafkaUrl');
    const queue = uniqueQueue('check-rf1');
    const topic = await createTopic(url, queue, 1, 1);
    expect(await brokerReplicationResults('Secret t/b', { KUEUER_BACKEND: url }, [queue])).toEqual([
      { ok: true, what: `Kafka topics (Secret t/b, 1 broker): ${topic} RF 1, min.insync.replicas 1 (single broker: no other broker to fail over to)` },
    ]);
  });

  it('FAILs an RF 1 topic on three brokers with kafka-reassign-partitions, and passes an RF 3 one', { timeout: 90_000 }, async () => {
    const url = inject('kafkaClusterUrl');
    const single = uniqueQueue('check-c-rf1');
    const replicated = uniqueQueue('check-c-rf3');
    const singleTopic = await createTopic(url, single, 1, 1);
    const replicatedTopic = await createTopic(url, replicated, 3, 2);
    const results = await brokerReplicationResults('Secret t/b', { KUEUER_BACKEND: url }, [replicated, single]);
    // Other test files stop and restart these shared brokers: the count read may be 2 for a moment, still a cluster.
    expect(results).toEqual([
      {
        ok: true,
        what: expect.stringMatching(
          new RegExp(`^Kafka topics \\(Secret t/b, [23] brokers\\): ${replicatedTopic.replace(/\./g, '\\.')} RF 3, min\\.insync\\.replicas 2$`),
        ),
      },
      {
        ok: false,
        what: expect.stringMatching(
          new RegExp(`^Kafka topic ${singleTopic.replace(/\./g, '\\.')} has replication factor 1: .*\\(Secret t/b, [23] brokers\\)$`),
        ),
        fix: expect.stringMatching(
          new RegExp(
            `give each partition [23] replicas: echo '\\{"version":1,"partitions":\\[\\{"topic":"${singleTopic.replace(/\./g, '\\.')}","partition":0,"replicas":\\[\\d,\\d(,\\d)?\\]\\}.*kafka-reassign-partitions\\.sh --bootstrap-server ${url.slice('kafka://'.length).replace(/\./g, '\\.')} --reassignment-json-file raise\\.json --execute.*; then kafka-configs\\.sh --bootstrap-server `,
          ),
        ),
      },
    ]);
  });
});
