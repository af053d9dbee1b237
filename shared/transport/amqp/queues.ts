/**
 * How the RabbitMQ backend declares its durable queues (request queues and
 * `<queue>.dead-letter`): quorum queues by default, replicated by Raft across
 * a cluster's nodes, or classic ones when the user chooses so. A queue that
 * already exists with other arguments (another type, another delivery limit)
 * is never redeclared: the broker refuses the declaration with
 * PRECONDITION_FAILED, and the queue is then used as it is (a passive
 * declare), with one log line naming the queue, the type found and how to
 * migrate. A declaration that fails closes its channel, so each runs on a
 * channel of its own.
 */
import type { ChannelModel, Options } from 'amqplib';
import type { Logger } from 'pino';
import type { RabbitMqQueueType } from '../backend.js';

export type QueueType = RabbitMqQueueType;

/**
 * Deliveries of one request after which a quorum queue drops it (RabbitMQ 4's own default): a request
 * that crashes or stalls every sidecar that takes it stops going round long before its deadline.
 */
export const DELIVERY_LIMIT = 20;

/** The arguments a durable queue is declared with, per type. */
export function queueArguments(type: QueueType, purpose: 'request' | 'dead-letter'): Record<string, unknown> {
  if (type === 'classic') return {};
  // Nothing consumes a dead-letter queue, so its copies need no delivery limit.
  return purpose === 'request' ? { 'x-queue-type': 'quorum', 'x-delivery-limit': DELIVERY_LIMIT } : { 'x-queue-type': 'quorum' };
}

/** The type RabbitMQ names in a PRECONDITION_FAILED about x-queue-type (`current is none` is a classic queue declared without it). */
export function existingQueueType(message: string): string | null {
  if (!/PRECONDITION_FAILED/.test(message) || !/inequivalent arg/.test(message)) return null;
  const arg = /inequivalent arg '([^']+)'/.exec(message)?.[1];
  if (arg !== 'x-queue-type') return 'the same type with other arguments';
  const current = /current is (?:the value '([^']+)'|none)/.exec(message);
  return current ? (current[1] ?? 'classic') : 'another type';
}

/** What a user reads when a queue already exists with another type or other arguments. */
export function mismatchAdvice(queue: string, wanted: QueueType, found: string, brokerMessage: string): string {
  return (
    `queue ${queue} already exists as ${found} (declared as ${wanted} here); using it as it is. ` +
    `To make it ${wanted} without stopping anything: give every component using it the same queue type (KUEUER_RABBITMQ_QUEUE_TYPE, kueuer.io/queue-type) and let them roll out, then ` +
    (queue.endsWith('.dead-letter')
      ? `keep its copies if you need them (rabbitmqadmin get queue=${queue} ackmode=ack_requeue_true) and delete it: rabbitmqctl delete_queue ${queue}; the next copy declares it again. `
      : `delete it once it is empty: rabbitmqctl delete_queue --if-empty ${queue} (repeat while it answers "Queue is not empty"); the components declare it again at once. `) +
    `Or set that type to ${found} to keep it (docs/rabbitmq.md, "An existing queue of another type"). Broker: ${brokerMessage}`
  );
}

/**
 * Declares a durable queue of the wanted type; if it exists with other arguments, checks it exists
 * and uses it. Resolves once the queue can be used; rejects with the broker's error otherwise
 * (NOT_FOUND for a classic queue whose node is down, a lost connection).
 */
export async function declareDurableQueue(model: ChannelModel, queue: string, type: QueueType, purpose: 'request' | 'dead-letter', log: Logger): Promise<void> {
  const channel = await model.createChannel();
  channel.on('error', () => undefined); // a refused declaration closes the channel; handled below
  try {
    await channel.assertQueue(queue, { durable: true, arguments: queueArguments(type, purpose) });
    await channel.close().catch(() => undefined);
    return;
  } catch (err) {
    const message = (err as Error).message;
    const found = existingQueueType(message);
    if (found === null) throw err;
    const passive = await model.createChannel();
    passive.on('error', () => undefined);
    await passive.checkQueue(queue);
    await passive.close().catch(() => undefined);
    log.error({ queue, wanted: type, found }, mismatchAdvice(queue, type, found, message));
  }
}

/**
 * How long a responder's reply inbox outlives its last consumer (x-expires): longer than a failover
 * (a new leader in ~3 s, a reconnect backing off up to 5 s), so a responder that reconnects finds its
 * inbox and the replies kept meanwhile; a responder that really died leaves nothing behind past it.
 */
export const REPLY_INBOX_EXPIRES_MS = 60_000;

/**
 * How a responder's reply inbox is declared. With quorum queues (the default) it is a quorum queue of
 * its own, replicated like the request queues: not exclusive, so it outlives the node of its owner's
 * connection and keeps the replies published while that connection fails over, and expiring once
 * unused for REPLY_INBOX_EXPIRES_MS. With classic queues (a user who chose no replication) it stays an
 * exclusive, auto-deleted queue on the node of the connection.
 */
export function inboxDeclaration(type: QueueType, expiresMs = REPLY_INBOX_EXPIRES_MS): Options.AssertQueue {
  if (type === 'classic') return { exclusive: true, autoDelete: true, durable: false };
  return { durable: true, exclusive: false, autoDelete: false, arguments: { 'x-queue-type': 'quorum', 'x-expires': expiresMs } };
}
