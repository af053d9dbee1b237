/** kueuer check's replication verdicts: a single point of failure on a cluster FAILs with the fix; on one node it is reported. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { brokerReplicationResults, kafkaTopicResults, rabbitQueueResults } from '../../cli/broker-checks.js';

describe('RabbitMQ queue types', () => {
  it('FAILs a classic queue on a 3-node cluster, naming it, its node and the migration', () => {
    const results = rabbitQueueResults(
      'Secret shop/kueuer-backend',
      [
        { name: 'shop.web', type: 'classic', node: 'rabbit@rabbit-1' },
        { name: 'shop.web.dead-letter', type: 'quorum' },
      ],
      3,
    );
    expect(results.filter((r) => !r.ok)).toEqual([
      {
        ok: false,
        what: expect.stringMatching(
          /^RabbitMQ queue shop\.web \(Secret shop\/kueuer-backend\) is a classic queue on a 3-node cluster: it lives on rabbit@rabbit-1 only/,
        ),
        fix: expect.stringMatching(/rabbitmqctl delete_queue shop\.web.*"An existing queue of another type"/),
      },
    ]);
    expect(results.find((r) => r.ok)?.what).toContain('shop.web.dead-letter quorum');
  });

  it('reports quorum queues, undeclared queues and a classic queue on a single node without failing', () => {
    const results = rabbitQueueResults(
      'Secret shop/kueuer-backend',
      [
        { name: 'shop.a', type: 'quorum' },
        { name: 'shop.b', type: 'classic' },
        { name: 'shop.b.dead-letter', type: undefined },
      ],
      1,
    );
    expect(results).toEqual([
      {
        ok: true,
        what: 'RabbitMQ queues (Secret shop/kueuer-backend, 1 node): shop.a quorum, shop.b classic (single node: no other node to fail over to), shop.b.dead-letter not declared yet',
      },
    ]);
    expect(rabbitQueueResults('s', [{ name: 'shop.b', type: 'classic' }], 2).some((r) => !r.ok)).toBe(true);
  });
});

describe('Kafka topic replication', () => {
  it('FAILs RF 1 and min.insync.replicas 1 on a 3-broker cluster with the command that fixes each', () => {
    const results = kafkaTopicResults(
      'Secret shop/kueuer-backend',
      [
        { name: 'kueuer.shop.web', replication: { replicationFactor: 1, minInsyncReplicas: 1 } },
        { name: 'kueuer.reply.shop.web.ab', replication: { replicationFactor: 3, minInsyncReplicas: 1 } },
        { name: 'kueuer.shop.ok', replication: { replicationFactor: 3, minInsyncReplicas: 2 } },
      ],
      3,
    );
    const failed = results.filter((r) => !r.ok);
    expect(failed).toHaveLength(2);
    expect(failed[0]!.what).toMatch(/^Kafka topic kueuer\.shop\.web has replication factor 1.*\(Secret shop\/kueuer-backend, 3 brokers\)$/);
    expect(failed[0]!.fix).toMatch(/kafka-reassign-partitions/);
    expect(failed[1]!.what).toMatch(/^Kafka topic kueuer\.reply\.shop\.web\.ab has min\.insync\.replicas 1/);
    expect(failed[1]!.fix).toMatch(/kafka-configs --alter .*--entity-name kueuer\.reply\.shop\.web\.ab --add-config min\.insync\.replicas=2/);
    expect(results[0]).toEqual({ ok: true, what: 'Kafka topics (Secret shop/kueuer-backend, 3 brokers): kueuer.shop.ok RF 3, min.insync.replicas 2' });
  });

  it('reports RF 1 on a single broker, and a topic not created yet, without failing', () => {
    expect(
      kafkaTopicResults(
        's',
        [
          { name: 'kueuer.a', replication: { replicationFactor: 1, minInsyncReplicas: 1 } },
          { name: 'kueuer.b', replication: undefined },
        ],
        1,
      ),
    ).toEqual([
      {
        ok: true,
        what: 'Kafka topics (s, 1 broker): kueuer.a RF 1, min.insync.replicas 1 (single broker: no other broker to fail over to), kueuer.b not created yet',
      },
    ]);
  });
});

describe('a broker that accepts connections and never answers', () => {
  /** A TCP server that accepts and stays silent, as a hung broker or a black-holing proxy does. */
  async function silentServer(): Promise<{ port: number; close: () => void }> {
    const sockets: Socket[] = [];
    const server = createServer((s) => sockets.push(s));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return { port: (server.address() as AddressInfo).port, close: () => (sockets.forEach((s) => s.destroy()), server.close()) };
  }

  it('Kafka: the replication read gives up within 20 s', async () => {
    const broker = await silentServer();
    const started = Date.now();
    try {
      await expect(brokerReplicationResults('Secret shop/b', { KUEUER_BACKEND: `kafka://127.0.0.1:${broker.port}` }, ['shop.web'])).rejects.toThrow();
      expect(Date.now() - started).toBeLessThan(20_000);
    } finally {
      broker.close();
    }
  }, 120_000);

  it('RabbitMQ: the management API read gives up within 20 s', async () => {
    const mgmt = await silentServer();
    const started = Date.now();
    try {
      const settings = { KUEUER_BACKEND: 'amqp://u:p@127.0.0.1:5672', KUEUER_RABBITMQ_MANAGEMENT_URL: `http://u:p@127.0.0.1:${mgmt.port}` };
      await expect(brokerReplicationResults('Secret shop/b', settings, ['shop.web'])).rejects.toThrow();
      expect(Date.now() - started).toBeLessThan(20_000);
    } finally {
      mgmt.close();
    }
  }, 120_000);
});

describe('an unreachable management API', () => {
  it("names the API's address and the cause, never the password", async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const settings = { KUEUER_BACKEND: 'amqp://u:s3cr%40t@127.0.0.1:5672', KUEUER_RABBITMQ_MANAGEMENT_URL: `http://u:s3cr%40t@127.0.0.1:${port}` };
    const err = (await brokerReplicationResults('Secret shop/b', settings, ['shop.web']).catch((e: unknown) => e)) as Error;
    expect(err.message).toMatch(new RegExp(`^RabbitMQ's management API at http://127\\.0\\.0\\.1:${port} did not answer: .*refused`));
    expect(err.message).not.toMatch(/s3cr/);
  });
});

describe("a workload's Secret naming files", () => {
  it("never reads a file of this machine that a workload's Secret names (it would go to the broker the Secret names)", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kueuer-check-'));
    writeFileSync(join(dir, 'id_rsa'), 'PRIVATE-KEY-OF-THE-ADMIN');
    const broker = createServer((s) => s.destroy());
    await new Promise<void>((resolve) => broker.listen(0, '127.0.0.1', resolve));
    try {
      const settings = {
        KUEUER_BACKEND: `kafka://127.0.0.1:${(broker.address() as AddressInfo).port}?sasl=plain`,
        KUEUER_KAFKA_USERNAME: 'tenant',
        KUEUER_KAFKA_PASSWORD_FILE: join(dir, 'id_rsa'),
      };
      const err = (await brokerReplicationResults('Secret shop/b', settings, ['shop.web']).catch((e: unknown) => e)) as Error;
      expect(err.message).toMatch(/KUEUER_KAFKA_PASSWORD_FILE names a file inside the pods; kueuer check reads no file a workload's Secret names/);
    } finally {
      broker.close();
    }
  });
});
