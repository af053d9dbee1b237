/**
 * Queue names in the cluster carry the namespace, so two namespaces never
 * share a queue (and a message on one cannot answer a client of the other).
 */
import { createHash } from 'node:crypto';
import { REPLY_ADDRESS_PREFIX } from './transport/transport.js';

const MAX_QUEUE = 200;

export function qualifiedQueueName(namespace: string, name: string): string {
  const full = `${namespace}.${name}`;
  if (full.length <= MAX_QUEUE) return full;
  const digest = createHash('sha256').update(full).digest('hex').slice(0, 16);
  return `${full.slice(0, MAX_QUEUE - 17)}-${digest}`;
}

/** The queue of an opted-in Service: its kueuer.io/queue, else its name, in its namespace. */
export function serviceQueue(namespace: string, name: string, explicit: string | undefined): string {
  return qualifiedQueueName(namespace, explicit ?? name);
}

/** Kafka names a queue's request topic `kueuer.<queue>` (transport/kafka/config.ts, requestTopic). */
const KAFKA_TOPIC_PREFIX = 'kueuer.';

/**
 * Why a request queue name is refused, or undefined: the reply namespace
 * (`kueuer.reply.*`) is where responders' private inboxes live, and a sidecar
 * publishes a reply to any address in it, so a request queue there could be
 * sent "replies" by any sidecar. In namespace `kueuer`, `kueuer.io/queue: reply.x`
 * (or a workload named `reply.x`) would name one. On Kafka a queue `reply.x`
 * (any queue of namespace `reply`) would be the topic `kueuer.reply.x`, among the
 * inboxes, results and cancellation topics, which the inbox sweeper may delete;
 * queue names do not depend on the backend (a namespace may move between them),
 * so it is refused on every backend.
 */
export function replyNamespaceProblem(queue: string): string | undefined {
  if (queue.startsWith(REPLY_ADDRESS_PREFIX)) {
    return `the queue ${JSON.stringify(queue)} falls in the reply namespace ${REPLY_ADDRESS_PREFIX}*, which only responders' reply inboxes may use`;
  }
  const topic = `${KAFKA_TOPIC_PREFIX}${queue}`;
  if (!topic.startsWith(REPLY_ADDRESS_PREFIX)) return undefined;
  return `the queue ${JSON.stringify(queue)} would be Kafka's topic ${JSON.stringify(topic)}, which falls in the reply namespace ${REPLY_ADDRESS_PREFIX}*, where only responders' reply inboxes and their results and cancellation topics may be`;
}

/** Where a sidecar copies the requests the app kept failing (--dead-letter): kept for an operator, not run. */
export const deadLetterQueue = (queue: string): string => `${queue}.dead-letter`;

/** Whether a queue name is a dead-letter queue (deadLetterQueue): its messages are copies, not requests to run. */
export const isDeadLetterQueue = (queue: string): boolean => queue.endsWith('.dead-letter');
