/**
 * The broker Secrets operators already run, read as they are (issue 21): each
 * Secret's shape is recognised by its keys and turned into the KUEUER_*
 * settings the components read. Pure: decoded Secret data in, settings out.
 *
 * Shapes, with the keys their operators write (docs/rabbitmq.md, docs/kafka.md):
 * - Kueuer's own: KUEUER_BACKEND and other KUEUER_* keys, used as they are.
 * - RabbitMQ Cluster Operator, `<cluster>-default-user`: username, password,
 *   host (`<cluster>.<namespace>.svc`), port (5672, or 5671 with TLS), type
 *   and provider (`rabbitmq`), default_user.conf (internal/resource/default_user_secret.go).
 * - Strimzi KafkaUser, SCRAM-SHA-512: password, sasl.jaas.config (whose
 *   `username="…"` is the Kafka user name).
 * - Strimzi KafkaUser, TLS: user.crt, user.key, user.p12, user.password and
 *   ca.crt, which is the *clients* CA that signed user.crt, not the CA of the
 *   brokers' certificates: it is never trusted for the connection.
 * - Strimzi `<cluster>-cluster-ca-cert`: ca.crt (ca.p12, ca.password), the CA
 *   of the brokers' certificates; during a CA renewal, older certificates
 *   under keys `ca-<date>.crt` are trusted too.
 */
import { KueuerError } from '../errors.js';

/** A Secret's name and its decoded values. */
export interface NamedSecret {
  name: string;
  data: Readonly<Record<string, string>>;
}

export type SecretShape = 'kueuer' | 'rabbitmq-default-user' | 'strimzi-scram-user' | 'strimzi-tls-user' | 'strimzi-cluster-ca';

/** The keys each shape needs, and where such a Secret comes from: the error for an unknown Secret lists them. */
export const SHAPES: Readonly<Record<SecretShape, { keys: readonly string[]; what: string }>> = {
  kueuer: { keys: ['KUEUER_BACKEND'], what: "Kueuer's own" },
  'rabbitmq-default-user': { keys: ['username', 'password', 'host', 'port'], what: "the RabbitMQ Cluster Operator's <cluster>-default-user" },
  'strimzi-scram-user': { keys: ['password', 'sasl.jaas.config'], what: "Strimzi's KafkaUser (scram-sha-512)" },
  'strimzi-tls-user': { keys: ['user.crt', 'user.key'], what: "Strimzi's KafkaUser (tls)" },
  'strimzi-cluster-ca': { keys: ['ca.crt'], what: "Strimzi's <cluster>-cluster-ca-cert" },
};

const has = (s: NamedSecret, keys: readonly string[]): boolean => keys.every((k) => (s.data[k] ?? '') !== '');

/** The shape of a Secret, by its keys; an unknown one is an error naming the Secret, the keys found and the keys expected. */
export function secretShape(s: NamedSecret): SecretShape {
  if (Object.keys(s.data).some((k) => k.startsWith('KUEUER_'))) return 'kueuer';
  if (has(s, SHAPES['rabbitmq-default-user'].keys) && (s.data.type ?? 'rabbitmq') === 'rabbitmq') return 'rabbitmq-default-user';
  if (has(s, SHAPES['strimzi-tls-user'].keys)) return 'strimzi-tls-user';
  if (has(s, SHAPES['strimzi-scram-user'].keys)) return 'strimzi-scram-user';
  if (has(s, SHAPES['strimzi-cluster-ca'].keys) && !Object.keys(s.data).some((k) => k.startsWith('user.'))) return 'strimzi-cluster-ca';
  const expected = Object.values(SHAPES)
    .map((v) => `${v.keys.join(' + ')} (${v.what})`)
    .join('; ');
  throw new KueuerError(
    'KUEUER_ERR_CONFIG',
    `the broker Secret ${s.name} has the keys [${Object.keys(s.data).sort().join(', ')}], which match no broker Secret Kueuer reads; expected one of: ${expected}`,
  );
}

/** The user name in a JAAS line such as Strimzi's `… ScramLoginModule required username="u" password="p";`. */
export function jaasUsername(jaas: string): string | undefined {
  return /\busername="((?:[^"\\]|\\.)*)"/.exec(jaas)?.[1]?.replace(/\\(.)/g, '$1');
}

function rabbitmqSettings(d: NamedSecret['data']): Record<string, string> {
  const tls = d.port === '5671';
  const auth = `${encodeURIComponent(d.username!)}:${encodeURIComponent(d.password!)}`;
  const host = d.host!.includes(':') && !d.host!.startsWith('[') ? `[${d.host}]` : d.host!; // an IPv6 address
  return {
    KUEUER_BACKEND: `${tls ? 'amqps' : 'amqp'}://${auth}@${host}:${d.port}`,
    // The operator's Service exposes the management API beside AMQP (15671 with TLS).
    KUEUER_RABBITMQ_MANAGEMENT_URL: `${tls ? 'https' : 'http'}://${auth}@${host}:${tls ? 15671 : 15672}`,
  };
}

/** The CA certificates of a cluster CA Secret: ca.crt, then any older `ca-….crt` kept during a renewal. */
function clusterCa(d: NamedSecret['data']): string {
  const older = Object.keys(d)
    .filter((k) => /^ca-.+\.crt$/.test(k))
    .sort();
  return [d['ca.crt']!, ...older.map((k) => d[k]!)].map((pem) => pem.trim()).join('\n');
}

/** One Secret's settings, named as the KUEUER_* variables the components read. */
export function shapeSettings(s: NamedSecret): Record<string, string> {
  const d = s.data;
  switch (secretShape(s)) {
    case 'kueuer':
      return Object.fromEntries(Object.entries(d).filter(([k]) => k.startsWith('KUEUER_')));
    case 'rabbitmq-default-user':
      return rabbitmqSettings(d);
    case 'strimzi-scram-user':
      return {
        // The KafkaUser's name is its SCRAM user; Strimzi names the Secret after it (unless a prefix is set).
        KUEUER_KAFKA_USERNAME: jaasUsername(d['sasl.jaas.config']!) ?? s.name,
        KUEUER_KAFKA_PASSWORD: d.password!,
        KUEUER_KAFKA_SASL: 'scram-sha-512',
      };
    case 'strimzi-tls-user':
      return { KUEUER_KAFKA_CERT: d['user.crt']!, KUEUER_KAFKA_KEY: d['user.key']! };
    case 'strimzi-cluster-ca':
      // The same key is the CA of a RabbitMQ cluster's TLS Secret (cert-manager's, the operator's caSecretName).
      return { KUEUER_KAFKA_CA: clusterCa(d), KUEUER_RABBITMQ_CA: clusterCa(d) };
  }
}

/**
 * The settings of several Secrets together (e.g. Kueuer's with the broker
 * address, a KafkaUser's and the cluster CA). A Kueuer-shaped Secret's own
 * KUEUER_* values win over those derived from an operator's Secret; among
 * derived values the first Secret's win.
 */
export function brokerSettings(secrets: readonly NamedSecret[]): Record<string, string> {
  const derived: Record<string, string> = {};
  const own: Record<string, string> = {};
  for (const s of secrets) {
    const target = secretShape(s) === 'kueuer' ? own : derived;
    for (const [k, v] of Object.entries(shapeSettings(s))) target[k] ??= v;
  }
  return { ...derived, ...own };
}

/** A Secret as the Kubernetes API returns it (base64 values), decoded. */
export function decodedSecret(name: string, data: Readonly<Record<string, string>> | undefined): NamedSecret {
  return { name, data: Object.fromEntries(Object.entries(data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')])) };
}

/** The KUEUER_* settings of one Secret as the Kubernetes API returns it, whatever its shape. */
export function apiSecretSettings(name: string, data: Readonly<Record<string, string>> | undefined): Record<string, string> {
  return brokerSettings([decodedSecret(name, data)]);
}
