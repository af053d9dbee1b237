/**
 * The broker Secrets operators write, in their real shapes (keys and value
 * formats from the operators' code, see docs/rabbitmq.md and docs/kafka.md),
 * read as they are: the settings they give and the kafkajs options built from them.
 */
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { brokerSecretEnv } from '../../shared/broker-secret/env.js';
import { brokerSettings, jaasUsername, secretShape, type NamedSecret } from '../../shared/broker-secret/shapes.js';
import { parseBackend } from '../../shared/transport/backend.js';
import { kafkaAuth, parseKafkaUrl } from '../../shared/transport/kafka/config.js';

const pem = (label: string, body: string): string => `-----BEGIN ${label}-----\n${body}\n-----END ${label}-----\n`;

/**
 * What the RabbitMQ Cluster Operator (v2) writes for a RabbitmqCluster `my-rabbit` in namespace `queues`
 * with the stream plugin enabled (internal/resource/default_user_secret.go: updatePorts, updateConnectionString).
 */
export const rabbitmqDefaultUser = (tls = false): NamedSecret => ({
  name: 'my-rabbit-default-user',
  data: {
    username: 'default_user_Fq2Sx3vN7hLmW-Pa9',
    password: 'b7/Gm+Xq1rT0zYw==kP',
    'default_user.conf': 'default_user = default_user_Fq2Sx3vN7hLmW-Pa9\ndefault_pass = b7/Gm+Xq1rT0zYw==kP',
    provider: 'rabbitmq',
    type: 'rabbitmq',
    host: 'my-rabbit.queues.svc',
    port: tls ? '5671' : '5672',
    'stream-port': tls ? '5551' : '5552',
    connection_string: `${tls ? 'amqps' : 'amqp'}://default_user_Fq2Sx3vN7hLmW-Pa9:b7/Gm+Xq1rT0zYw==kP@my-rabbit.queues.svc:${tls ? '5671' : '5672'}/`,
  },
});

/** Strimzi's KafkaUser `kueuer` with `authentication: {type: scram-sha-512}` (KafkaUserModel: password, sasl.jaas.config). */
export const strimziScramUser: NamedSecret = {
  name: 'kueuer',
  data: {
    password: 'Vh3kq9Lr0sTzWm2cNp8bXa4fGy6dJe1u',
    'sasl.jaas.config': 'org.apache.kafka.common.security.scram.ScramLoginModule required username="kueuer" password="Vh3kq9Lr0sTzWm2cNp8bXa4fGy6dJe1u";',
  },
};

/** Strimzi's KafkaUser with `authentication: {type: tls}`: ca.crt here is the clients CA, which signed user.crt. */
const strimziTlsUser: NamedSecret = {
  name: 'kueuer-tls',
  data: {
    'ca.crt': pem('CERTIFICATE', 'Q0xJRU5UUy1DQQ=='),
    'user.crt': pem('CERTIFICATE', 'VVNFUi1DRVJU'),
    'user.key': pem('PRIVATE KEY', 'VVNFUi1LRVk='),
    'user.p12': 'MIIKPAIBAzCCCfYGCSqGSIb3DQEHAaCCCecEggnjMIIJ3zCCBXgGCSqGSIb3',
    'user.password': 'Yk3Jq0Wm2sLx',
  },
};

/** Strimzi's `my-cluster-cluster-ca-cert` (Ca.java: ca.crt, ca.p12, ca.password), in a CA renewal: an older certificate kept beside it. */
export const strimziClusterCa: NamedSecret = {
  name: 'my-cluster-cluster-ca-cert',
  data: {
    'ca.crt': pem('CERTIFICATE', 'Q0xVU1RFUi1DQQ=='),
    'ca-2026-01-01T00-00-00Z.crt': pem('CERTIFICATE', 'T0xELUNMVVNURVItQ0E='),
    'ca.p12': 'MIIGpgIBAzCCBlAGCSqGSIb3DQEHAaCCBkEEggY9MIIGOTCCBjUGCSqGSIb3',
    'ca.password': 'Zq8Lm3Nx7Rv1',
  },
};

const kafkaAddress: NamedSecret = { name: 'kueuer-backend', data: { KUEUER_BACKEND: 'kafka://my-cluster-kafka-bootstrap.kafka.svc:9093' } };

describe('broker Secret shapes', () => {
  it('recognises each operator Secret by its keys', () => {
    expect(secretShape(rabbitmqDefaultUser())).toBe('rabbitmq-default-user');
    expect(secretShape(strimziScramUser)).toBe('strimzi-scram-user');
    expect(secretShape(strimziTlsUser)).toBe('strimzi-tls-user');
    expect(secretShape(strimziClusterCa)).toBe('strimzi-cluster-ca');
    expect(secretShape(kafkaAddress)).toBe('kueuer');
  });

  it("turns the RabbitMQ operator's default-user Secret into the AMQP and management URLs", () => {
    const settings = brokerSettings([rabbitmqDefaultUser()]);
    expect(settings).toEqual({
      KUEUER_BACKEND: 'amqp://default_user_Fq2Sx3vN7hLmW-Pa9:b7%2FGm%2BXq1rT0zYw%3D%3DkP@my-rabbit.queues.svc:5672',
      KUEUER_RABBITMQ_MANAGEMENT_URL: 'http://default_user_Fq2Sx3vN7hLmW-Pa9:b7%2FGm%2BXq1rT0zYw%3D%3DkP@my-rabbit.queues.svc:15672',
    });
    // The password's URL-encoding round-trips through the URL parser amqplib uses.
    expect(decodeURIComponent(new URL(settings.KUEUER_BACKEND!).password)).toBe('b7/Gm+Xq1rT0zYw==kP');
    expect(parseBackend(settings.KUEUER_BACKEND!).kind).toBe('amqp');
    expect(brokerSettings([rabbitmqDefaultUser(true)]).KUEUER_BACKEND).toMatch(/^amqps:\/\/.*@my-rabbit\.queues\.svc:5671$/);
  });

  it("addresses what the operator's connection_string addresses: same user, password, host, port and vhost /", () => {
    for (const tls of [false, true]) {
      const secret = rabbitmqDefaultUser(tls);
      const built = new URL(brokerSettings([secret]).KUEUER_BACKEND!);
      // The operator's string, password not URL-encoded: split by hand, as a URL parser would misread its `/`.
      const [, scheme, user, pass, host, port, vhost] = /^(amqps?):\/\/([^:]+):(.*)@([^@:]+):(\d+)\/(.*)$/.exec(secret.data.connection_string!)!;
      expect([built.protocol, decodeURIComponent(built.username), decodeURIComponent(built.password), built.hostname, built.port]).toEqual([
        `${scheme}:`,
        user,
        pass,
        host,
        port,
      ]);
      // Its empty path after `/` and Kueuer's URL without a path are both the default vhost `/`.
      expect([vhost, built.pathname]).toEqual(['', '']);
    }
  });

  it("builds kafkajs's SCRAM-SHA-512 and TLS options from a KafkaUser Secret and the cluster CA", () => {
    const env = brokerSettings([kafkaAddress, strimziScramUser, strimziClusterCa]);
    const auth = kafkaAuth(parseKafkaUrl(env.KUEUER_BACKEND!), env);
    expect(auth).toEqual({
      ssl: { ca: [`${strimziClusterCa.data['ca.crt']!.trim()}\n${strimziClusterCa.data['ca-2026-01-01T00-00-00Z.crt']!.trim()}`] },
      sasl: { mechanism: 'scram-sha-512', username: 'kueuer', password: 'Vh3kq9Lr0sTzWm2cNp8bXa4fGy6dJe1u' },
    });
  });

  it('presents the TLS user certificate and never trusts the clients CA that came with it', () => {
    const env = brokerSettings([kafkaAddress, strimziTlsUser, strimziClusterCa]);
    const auth = kafkaAuth(parseKafkaUrl(env.KUEUER_BACKEND!), env);
    expect(auth.ssl).toEqual({
      ca: [expect.stringContaining('Q0xVU1RFUi1DQQ==')],
      cert: strimziTlsUser.data['user.crt'],
      key: strimziTlsUser.data['user.key'],
    });
    expect(JSON.stringify(auth)).not.toContain('Q0xJRU5UUy1DQQ==');
    expect(auth.sasl).toBeUndefined();
  });

  it("lets Kueuer's own Secret override what an operator Secret implies", () => {
    const own: NamedSecret = { name: 'kueuer-backend', data: { KUEUER_KAFKA_USERNAME: 'other' } };
    expect(brokerSettings([strimziScramUser, own]).KUEUER_KAFKA_USERNAME).toBe('other');
  });

  it('brackets an IPv6 host in the URLs built from a default-user Secret', () => {
    const ipv6 = { ...rabbitmqDefaultUser(), data: { ...rabbitmqDefaultUser().data, host: 'fd00:10:96::1a' } };
    const env = brokerSettings([ipv6]);
    expect(env.KUEUER_BACKEND).toMatch(/@\[fd00:10:96::1a\]:5672$/);
    expect(env.KUEUER_RABBITMQ_MANAGEMENT_URL).toMatch(/@\[fd00:10:96::1a\]:15672$/);
    expect(parseBackend(env.KUEUER_BACKEND!).kind).toBe('amqp');
  });

  it('reads the user name from the JAAS line, quotes escaped', () => {
    expect(jaasUsername(strimziScramUser.data['sasl.jaas.config']!)).toBe('kueuer');
    expect(jaasUsername('x required username="a\\"b" password="p";')).toBe('a"b');
  });

  it('refuses a Secret of unknown shape, naming it, the keys it has and the keys expected', () => {
    const odd: NamedSecret = { name: 'mq-creds', data: { user: 'u', pass: 'p' } };
    expect(() => brokerSettings([odd])).toThrow(
      /the broker Secret mq-creds has the keys \[pass, user\].*expected one of: KUEUER_BACKEND .*username \+ password \+ host \+ port .*password \+ sasl\.jaas\.config .*user\.crt \+ user\.key .*ca\.crt/,
    );
    // A default-user-like Secret of another service (Service Binding type) is not RabbitMQ's.
    expect(() => secretShape({ name: 'pg', data: { ...rabbitmqDefaultUser().data, type: 'postgresql' } })).toThrow(/the broker Secret pg/);
  });
});

describe('broker Secrets in a component', () => {
  /** A Secret mounted as Kubernetes does: files behind a `..data` link into a timestamped directory. */
  function mount(root: string, s: NamedSecret): string {
    const dir = join(root, s.name);
    const stamp = join(dir, '..2026_12_07_01_00_00.123');
    mkdirSync(stamp, { recursive: true });
    symlinkSync('..2026_12_07_01_00_00.123', join(dir, '..data'));
    for (const [k, v] of Object.entries(s.data)) {
      writeFileSync(join(stamp, k), v);
      symlinkSync(join('..data', k), join(dir, k));
    }
    return dir;
  }

  it('reads mounted Secrets named in KUEUER_BROKER_SECRET_DIRS; a variable already set wins', () => {
    const root = mkdtempSync(join(tmpdir(), 'kueuer-secrets-'));
    const dirs = [mount(root, strimziScramUser), mount(root, strimziClusterCa)].join(',');
    const env = brokerSecretEnv({ KUEUER_BROKER_SECRET_DIRS: dirs, KUEUER_BACKEND: 'kafka://k:9093', KUEUER_KAFKA_USERNAME: 'set-here' });
    expect(env).toEqual({
      KUEUER_KAFKA_PASSWORD: 'Vh3kq9Lr0sTzWm2cNp8bXa4fGy6dJe1u',
      KUEUER_KAFKA_SASL: 'scram-sha-512',
      KUEUER_KAFKA_CA: expect.stringContaining('Q0xVU1RFUi1DQQ=='),
      // The same ca.crt key is a RabbitMQ cluster's CA Secret (read only with an amqps backend).
      KUEUER_RABBITMQ_CA: expect.stringContaining('Q0xVU1RFUi1DQQ=='),
    });
  });

  it('reads a default-user Secret the container got through envFrom', () => {
    expect(brokerSecretEnv({ ...rabbitmqDefaultUser().data }).KUEUER_BACKEND).toMatch(/^amqp:\/\/default_user_.*@my-rabbit\.queues\.svc:5672$/);
    // Not without the Service Binding type, and never over a KUEUER_BACKEND of the container's.
    expect(brokerSecretEnv({ username: 'u', password: 'p', host: 'h', port: '1' })).toEqual({});
    expect(brokerSecretEnv({ ...rabbitmqDefaultUser().data, KUEUER_BACKEND: 'amqp://x@y:1' })).toEqual({});
  });

  it('names a directory that is not there', () => {
    expect(() => brokerSecretEnv({ KUEUER_BROKER_SECRET_DIRS: '/nonexistent/kueuer' })).toThrow(/KUEUER_BROKER_SECRET_DIRS names \/nonexistent\/kueuer/);
  });
});

describe('kafkaAuth with settings from broker Secrets and from the container', () => {
  it('trusts the CA file set on the container over the cluster CA a mounted Secret implies', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kueuer-ca-'));
    writeFileSync(join(dir, 'ca.pem'), pem('CERTIFICATE', 'T1dOLUNB'));
    const env = { KUEUER_BACKEND: 'kafka://k:9093', KUEUER_KAFKA_CA_FILE: join(dir, 'ca.pem') };
    const merged = { ...env, ...brokerSettings([strimziClusterCa]) };
    expect(kafkaAuth(parseKafkaUrl(env.KUEUER_BACKEND), merged).ssl).toEqual({ ca: [pem('CERTIFICATE', 'T1dOLUNB')] });
  });

  it('refuses a KUEUER_KAFKA_SASL kafkajs does not support, naming it and the mechanisms', () => {
    const env = { KUEUER_KAFKA_SASL: 'gssapi', KUEUER_KAFKA_USERNAME: 'u', KUEUER_KAFKA_PASSWORD: 'p' };
    expect(() => kafkaAuth(parseKafkaUrl('kafka://k:9093'), env)).toThrow(/KUEUER_KAFKA_SASL "gssapi" is not supported \(plain, scram-sha-256, scram-sha-512/);
  });
});
