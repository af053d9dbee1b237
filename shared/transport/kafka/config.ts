/**
 * `--backend kafka://host:port[,host:port][?tls=true&sasl=plain|scram-sha-256|scram-sha-512]`
 * Credentials never travel in the URL: they come from environment variables
 * that a Pod fills from a Secret, or from files a Secret is mounted as.
 *   KUEUER_KAFKA_USERNAME / KUEUER_KAFKA_USERNAME_FILE
 *   KUEUER_KAFKA_PASSWORD / KUEUER_KAFKA_PASSWORD_FILE
 *   KUEUER_KAFKA_CA_FILE (PEM; TLS is on when set or when tls=true)
 * and, derived from an operator's Secrets (shared/broker-secret/): KUEUER_KAFKA_CA
 * (PEM), KUEUER_KAFKA_CERT / KUEUER_KAFKA_KEY (a TLS client certificate) and
 * KUEUER_KAFKA_SASL (the mechanism, when the URL names none).
 * Pure apart from reading those files; loads no Kafka client.
 */
import { readFileSync } from 'node:fs';
import { KueuerError } from '../../errors.js';
import { REPLY_ADDRESS_PREFIX } from '../transport.js';

/** One topic and one consumer group per queue. */
export const requestTopic = (queue: string): string => `kueuer.${queue}`;
export const consumerGroup = (queue: string): string => `kueuer.${queue}`;

/**
 * A responder's private reply topic, `kueuer.reply.<queue>.<16 hex digits>` (openReplyInbox): the
 * only topics the sweeper may delete. A queue's results topic ends in `.async` and is never one.
 */
export function isInboxTopic(topic: string): boolean {
  return topic.startsWith(REPLY_ADDRESS_PREFIX) && /\.[0-9a-f]{16}$/.test(topic);
}

const SASL_MECHANISMS = ['plain', 'scram-sha-256', 'scram-sha-512'] as const;
export type SaslMechanism = (typeof SASL_MECHANISMS)[number];
const SASL_SUPPORTED = `${SASL_MECHANISMS.join(', ')}; kafkajs has no GSSAPI/Kerberos`;
const isSaslMechanism = (v: string): v is SaslMechanism => (SASL_MECHANISMS as readonly string[]).includes(v);

export interface KafkaSpec {
  brokers: string[];
  tls: boolean;
  sasl?: SaslMechanism;
}

const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/;

export function parseKafkaUrl(value: string): KafkaSpec {
  const bad = (why: string) =>
    new KueuerError('KUEUER_ERR_BACKEND_URL', `kafka backend: ${why}; expected kafka://host:port[,host:port][?tls=true&sasl=scram-sha-512]`);
  const rest = value.slice('kafka://'.length);
  const [hostPart = '', query = ''] = rest.split('?', 2);
  if (hostPart.includes('@')) throw bad('credentials do not go in the URL; use KUEUER_KAFKA_USERNAME and KUEUER_KAFKA_PASSWORD (from a Secret)');
  const brokers = hostPart.split(',').filter((h) => h !== '');
  if (brokers.length === 0) throw bad('no broker given');
  for (const b of brokers) {
    const m = HOST_PORT.exec(b);
    if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) throw bad(`${JSON.stringify(b)} is not host:port`);
  }
  const params = new URLSearchParams(query);
  for (const key of params.keys()) if (key !== 'tls' && key !== 'sasl') throw bad(`unknown parameter ${JSON.stringify(key)}`);
  const tls = params.get('tls');
  if (tls !== null && tls !== 'true' && tls !== 'false') throw bad('tls must be true or false');
  const sasl = params.get('sasl');
  if (sasl !== null && !isSaslMechanism(sasl)) throw bad(`sasl ${JSON.stringify(sasl)} is not supported (${SASL_SUPPORTED})`);
  return { brokers, tls: tls === 'true', ...(sasl ? { sasl } : {}) };
}

function secret(env: Record<string, string | undefined>, name: string): string | undefined {
  const file = env[`${name}_FILE`];
  if (file) return readFileSync(file, 'utf8').trim();
  return env[name];
}

export interface KafkaClientAuth {
  ssl?: { ca?: string[]; cert?: string; key?: string } | true;
  sasl?: { mechanism: SaslMechanism; username: string; password: string };
}

export function kafkaAuth(spec: KafkaSpec, env: Record<string, string | undefined>): KafkaClientAuth {
  const auth: KafkaClientAuth = {};
  const caFile = env.KUEUER_KAFKA_CA_FILE;
  // A CA file set on the container wins over the CA a mounted Secret implies, as the _FILE forms do in secret().
  const ca = caFile ? readFileSync(caFile, 'utf8') : env.KUEUER_KAFKA_CA;
  const client = env.KUEUER_KAFKA_CERT && env.KUEUER_KAFKA_KEY ? { cert: env.KUEUER_KAFKA_CERT, key: env.KUEUER_KAFKA_KEY } : {};
  if (ca || client.cert) auth.ssl = { ...(ca ? { ca: [ca] } : {}), ...client };
  else if (spec.tls) auth.ssl = true;
  const fromEnv = env.KUEUER_KAFKA_SASL;
  if (fromEnv && !isSaslMechanism(fromEnv)) {
    throw new KueuerError('KUEUER_ERR_BACKEND_URL', `kafka backend: KUEUER_KAFKA_SASL ${JSON.stringify(fromEnv)} is not supported (${SASL_SUPPORTED})`);
  }
  const mechanism = spec.sasl ?? (fromEnv && isSaslMechanism(fromEnv) ? fromEnv : undefined);
  if (mechanism) {
    const username = secret(env, 'KUEUER_KAFKA_USERNAME');
    const password = secret(env, 'KUEUER_KAFKA_PASSWORD');
    if (!username || !password) {
      throw new KueuerError(
        'KUEUER_ERR_BACKEND_URL',
        `kafka backend: sasl=${mechanism} needs KUEUER_KAFKA_USERNAME and KUEUER_KAFKA_PASSWORD (or their _FILE forms)`,
      );
    }
    auth.sasl = { mechanism, username, password };
  }
  return auth;
}

/** Replication of the topics Kueuer creates (topics.ts). */
export interface TopicReplication {
  replicationFactor: number;
  minInsyncReplicas: number;
}

/** The defaults of --kafka-replication-factor and --kafka-min-insync-replicas. */
export const DEFAULT_TOPIC_REPLICATION: TopicReplication = { replicationFactor: 3, minInsyncReplicas: 2 };
