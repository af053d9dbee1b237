/** Options that several components share, defined once. */
import { isValidQueueName } from './envelope.js';
import { replyNamespaceProblem } from './queue-names.js';
import { durationIn, integerIn, oneOf, parseHostPort, type OptionSpec } from './options.js';
import { KAFKA_DELIVERIES, parseBackend, RABBITMQ_QUEUE_TYPES, type BackendSpec } from './transport/backend.js';
import { readCaFile } from './transport/amqp/tls.js';
import { DEFAULT_TOPIC_REPLICATION } from './transport/kafka/config.js';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export function backendOption(defaultValue?: string): OptionSpec<BackendSpec> {
  return {
    flag: 'backend',
    env: 'KUEUER_BACKEND',
    description: 'broker: "memory" (in-process, `local` only), an amqp://user:pass@host:5672/vhost URL, or kafka://host:port[,host:port]',
    ...(defaultValue !== undefined ? { defaultValue } : {}),
    parse: (raw) => {
      try {
        return parseBackend(raw);
      } catch (err) {
        throw new Error((err as Error).message);
      }
    },
  };
}

export function queueOption(defaultValue?: string): OptionSpec<string> {
  return {
    flag: 'queue',
    env: 'KUEUER_QUEUE',
    description: 'request queue name (letters, digits, . _ -; at most 200 characters)',
    ...(defaultValue !== undefined ? { defaultValue } : {}),
    parse: (raw) => {
      if (!isValidQueueName(raw)) throw new Error(`expected a queue name of letters, digits, ".", "_" or "-", got ${JSON.stringify(raw)}`);
      // Responders' reply inboxes live there, and a sidecar publishes a reply to any address in it.
      const replyProblem = replyNamespaceProblem(raw);
      if (replyProblem) throw new Error(`${replyProblem}; name the queue otherwise`);
      return raw;
    },
  };
}

export function appOption(): OptionSpec<ReturnType<typeof parseHostPort>> {
  return { flag: 'app', env: 'KUEUER_APP', description: 'the app to call, as HOST:PORT (plain HTTP)', parse: parseHostPort };
}

export function concurrencyOption(): OptionSpec<number> {
  return {
    flag: 'concurrency',
    env: 'KUEUER_CONCURRENCY',
    description: 'requests handed to the app at once by this sidecar',
    defaultValue: '1',
    parse: integerIn(1, 1000),
  };
}

export function adminListenOption(defaultValue: string): OptionSpec<ReturnType<typeof parseHostPort>> {
  return {
    flag: 'admin-listen',
    env: 'KUEUER_ADMIN_LISTEN',
    description: 'address of /metrics, /healthz and /readyz (kept off the proxied port so every app path passes through)',
    defaultValue,
    parse: parseHostPort,
  };
}

export function logLevelOption(): OptionSpec<LogLevel> {
  return { flag: 'log-level', env: 'KUEUER_LOG_LEVEL', description: 'pino log level', defaultValue: 'info', parse: oneOf(LOG_LEVELS) };
}

/** The broker options of the responder, the sidecar and `local`: Kafka's, and RabbitMQ's queue type. */
export function kafkaOptions() {
  return {
    rabbitmqQueueType: {
      flag: 'queue-type',
      env: 'KUEUER_RABBITMQ_QUEUE_TYPE',
      description:
        'amqp: type of the request and dead-letter queues Kueuer declares: quorum (replicated across a cluster) or classic (one node); an existing queue is used as it is',
      defaultValue: 'quorum',
      parse: oneOf(RABBITMQ_QUEUE_TYPES),
    },
    rabbitmqCaFile: {
      flag: 'rabbitmq-ca-file',
      env: 'KUEUER_RABBITMQ_CA_FILE',
      description:
        "amqps: PEM file of a private CA that signed the broker's certificate, trusted besides Node's CAs (default: the broker Secret's ca.crt, if any)",
      optional: true,
      parse: readCaFile,
    },
    kafkaPartitions: {
      flag: 'kafka-partitions',
      env: 'KUEUER_KAFKA_PARTITIONS',
      description: 'kafka: partitions of a request topic Kueuer creates (caps useful sidecar replicas)',
      defaultValue: '6',
      parse: integerIn(1, 10_000),
    },
    kafkaReplicationFactor: {
      flag: 'kafka-replication-factor',
      env: 'KUEUER_KAFKA_REPLICATION_FACTOR',
      description: 'kafka: replication factor of the topics Kueuer creates (fewer, with a warning, on a cluster with fewer brokers)',
      defaultValue: String(DEFAULT_TOPIC_REPLICATION.replicationFactor),
      parse: integerIn(1, 32),
    },
    kafkaMinInsyncReplicas: {
      flag: 'kafka-min-insync-replicas',
      env: 'KUEUER_KAFKA_MIN_INSYNC_REPLICAS',
      description: 'kafka: min.insync.replicas of the topics Kueuer creates (capped at their replication factor)',
      defaultValue: String(DEFAULT_TOPIC_REPLICATION.minInsyncReplicas),
      parse: integerIn(1, 32),
    },
    delivery: {
      flag: 'delivery',
      env: 'KUEUER_DELIVERY',
      description:
        'kafka: at-least-once (commit after the reply is published), at-most-once (commit before calling the app) or transactional (reply and commit in one Kafka transaction)',
      defaultValue: 'at-least-once',
      parse: oneOf(KAFKA_DELIVERIES),
    },
  } satisfies Record<string, OptionSpec<unknown>>;
}

export function timeoutOption(): OptionSpec<number> {
  return {
    flag: 'timeout',
    env: 'KUEUER_TIMEOUT',
    description: 'deadline of a request from its arrival; past it the client gets 504',
    defaultValue: '60s',
    parse: durationIn(100, 24 * 3_600_000),
  };
}
