/**
 * Queue names in the cluster carry the namespace, so two namespaces never
 * share a queue (and a message on one cannot answer a client of the other).
 */
import { createHash } from 'node:crypto';

const MAX_QUEUE = 200;

export function qualifiedQueueName(namespace: string, name: string): string {
  const full = `${namespace}.${name}`;
  if (full.length <= MAX_QUEUE) return full;
  const digest = createHash('sha256').update(full).digest('hex').slice(0, 16);
  return `${full.slice(0, MAX_QUEUE - 17)}-${digest}`;
}

/** The queue of an annotated Service: its kueuer.io/queue, else its name, in its namespace. */
export function serviceQueue(namespace: string, name: string, explicit: string | undefined): string {
  return qualifiedQueueName(namespace, explicit ?? name);
}
