/**
 * Strimzi's Secrets as they are, against a real broker that asks for what a
 * Strimzi listener asks for: a private single KRaft broker (the jars of
 * scripts/dev/kafka.sh) with a SASL_SSL listener, SCRAM-SHA-512 users and a
 * certificate signed by a CA of this test's own. The KafkaUser Secret
 * (password, sasl.jaas.config) and the cluster CA Secret (ca.crt, ca.p12,
 * ca.password) are mounted as files, as the webhook mounts them, and named in
 * KUEUER_BROKER_SECRET_DIRS; the backend URL says neither tls nor sasl.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readKafkaTopics } from '../../cli/broker-checks.js';
import { brokerSecretEnv } from '../../shared/broker-secret/env.js';
import { parseKafkaUrl } from '../../shared/transport/kafka/config.js';
import { freePort } from '../helpers/net.js';
import { msgIs, spawnKueuer, type KueuerProcess } from '../helpers/processes.js';
import { uniqueQueue, waitFor } from '../helpers/stack.js';

const root = join(import.meta.dirname, '..', '..');
const PASSWORD = 'Vh3kq9Lr0sTzWm2cNp8bXa4fGy6dJe1u';
const jaas = (user: string, password: string) => `org.apache.kafka.common.security.scram.ScramLoginModule required username="${user}" password="${password}";`;

/** A CA and a certificate for 127.0.0.1 signed by it (openssl), as PEM files in `dir`. */
function certificates(dir: string): { ca: string; keystore: string } {
  const run = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  run(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/O=io.strimzi/CN=cluster-ca v0']);
  run(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'broker.key', '-out', 'broker.csr', '-subj', '/CN=my-cluster-kafka']);
  writeFileSync(join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  run(['x509', '-req', '-in', 'broker.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'broker.crt', '-days', '2', '-extfile', 'san.ext']);
  run(['pkcs8', '-topk8', '-nocrypt', '-in', 'broker.key', '-out', 'broker.pk8']);
  writeFileSync(join(dir, 'keystore.pem'), readFileSync(join(dir, 'broker.pk8'), 'utf8') + readFileSync(join(dir, 'broker.crt'), 'utf8'));
  return { ca: join(dir, 'ca.crt'), keystore: join(dir, 'keystore.pem') };
}

/** Writes a Secret as Kubernetes mounts it: one file per key in a directory named after the Secret. */
function mount(parent: string, name: string, data: Record<string, string>): string {
  const dir = join(parent, name);
  mkdirSync(dir, { recursive: true });
  for (const [k, v] of Object.entries(data)) writeFileSync(join(dir, k), v);
  return dir;
}

describe("Strimzi's KafkaUser and cluster CA Secrets against a SASL_SSL broker", () => {
  const dir = mkdtempSync(join(tmpdir(), 'kueuer-strimzi-'));
  let broker: ChildProcess | undefined;
  let port = 0;
  let secretDirs = '';
  const started: KueuerProcess[] = [];

  beforeAll(async () => {
    const libs = execFileSync('bash', [join(root, 'scripts/dev/kafka.sh'), 'libs'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
      .trim()
      .split('\n')
      .pop()!;
    const { ca, keystore } = certificates(dir);
    port = await freePort();
    const [controller, internal] = [await freePort(), await freePort()];
    const properties = join(dir, 'server.properties');
    writeFileSync(
      properties,
      [
        'process.roles=broker,controller',
        'node.id=1',
        `controller.quorum.bootstrap.servers=127.0.0.1:${controller}`,
        `listeners=SASL_SSL://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controller},INTERNAL://127.0.0.1:${internal}`,
        `advertised.listeners=SASL_SSL://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controller},INTERNAL://127.0.0.1:${internal}`,
        'controller.listener.names=CONTROLLER',
        'inter.broker.listener.name=INTERNAL',
        'listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT,INTERNAL:PLAINTEXT',
        'sasl.enabled.mechanisms=SCRAM-SHA-512',
        'listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;',
        'ssl.keystore.type=PEM',
        `ssl.keystore.location=${keystore}`,
        `log.dirs=${join(dir, 'data')}`,
        'offsets.topic.replication.factor=1',
        'offsets.topic.num.partitions=1',
        'transaction.state.log.replication.factor=1',
        'transaction.state.log.min.isr=1',
        'group.initial.rebalance.delay.ms=0',
        'auto.create.topics.enable=false',
        '',
      ].join('\n'),
    );
    const cp = ['-cp', `${libs}/*`];
    const clusterId = execFileSync('java', [...cp, 'kafka.tools.StorageTool', 'random-uuid'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
      .trim()
      .split('\n')
      .pop()!;
    execFileSync('java', [
      ...cp,
      'kafka.tools.StorageTool',
      'format',
      '--standalone',
      '-t',
      clusterId,
      '-c',
      properties,
      '--add-scram',
      `SCRAM-SHA-512=[name=kueuer,password=${PASSWORD}]`,
    ]);
    broker = spawn('java', ['-Xms128m', '-Xmx384m', '-XX:+UseG1GC', '-XX:TieredStopAtLevel=1', ...cp, 'kafka.Kafka', properties], {
      stdio: ['ignore', 'ignore', 'ignore'],
    });
    const listening = () =>
      new Promise<boolean>((resolve) => {
        const s = net.connect(port, '127.0.0.1');
        s.once('connect', () => (s.destroy(), resolve(true)));
        s.once('error', () => resolve(false));
      });
    await waitFor(listening, 120_000, `the SASL_SSL broker to listen on ${port}`);
    // The Secrets the operators write, with their keys (KafkaUserModel, Ca.java).
    const caPem = readFileSync(ca, 'utf8');
    secretDirs = [
      mount(dir, 'kueuer', { password: PASSWORD, 'sasl.jaas.config': jaas('kueuer', PASSWORD) }),
      mount(dir, 'my-cluster-cluster-ca-cert', { 'ca.crt': caPem, 'ca.p12': 'MIIGpgIBAzCCBlAGCSqGSIb3DQEHAaCC', 'ca.password': 'Zq8Lm3Nx7Rv1' }),
    ].join(',');
  }, 180_000);

  afterAll(() => {
    started.forEach((p) => p.child.kill('SIGKILL'));
    broker?.kill('SIGKILL');
  });

  it('builds the SCRAM-SHA-512 and TLS options the broker accepts from the mounted Secrets', { timeout: 90_000 }, async () => {
    const settings = brokerSecretEnv({ KUEUER_BROKER_SECRET_DIRS: secretDirs });
    const read = await readKafkaTopics(parseKafkaUrl(`kafka://127.0.0.1:${port}`), settings, []);
    expect(read.brokerIds).toHaveLength(1);
    // The same Secrets with another password: the broker refuses the SCRAM exchange.
    const wrong = { ...settings, KUEUER_KAFKA_PASSWORD: 'not-the-password' };
    await expect(readKafkaTopics(parseKafkaUrl(`kafka://127.0.0.1:${port}`), wrong, [])).rejects.toThrow();
    // Without the cluster CA Secret there is no TLS (the URL does not ask for it): the SSL listener is not reached.
    const noCa = brokerSecretEnv({ KUEUER_BROKER_SECRET_DIRS: secretDirs.split(',')[0]! });
    expect(noCa.KUEUER_KAFKA_CA).toBeUndefined();
    await expect(readKafkaTopics(parseKafkaUrl(`kafka://127.0.0.1:${port}`), noCa, [])).rejects.toThrow();
  });

  it('a real sidecar connects with them, its URL naming neither tls nor sasl', { timeout: 120_000 }, async () => {
    const sidecar = spawnKueuer(
      [
        'sidecar',
        '--app',
        '127.0.0.1:9',
        '--queue',
        uniqueQueue('strimzi'),
        '--admin-listen',
        `127.0.0.1:${await freePort()}`,
        '--backend',
        `kafka://127.0.0.1:${port}`,
      ],
      { KUEUER_BROKER_SECRET_DIRS: secretDirs },
    );
    started.push(sidecar);
    await sidecar.waitForLog(msgIs('connected to Kafka'), 90_000);
  });
});
