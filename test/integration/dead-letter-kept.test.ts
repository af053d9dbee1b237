/**
 * A dead-lettered copy is kept for inspection (`--dead-letter`, docs/reliability.md): it carries its
 * request's deadline, which on RabbitMQ became the copy's per-message TTL, so the broker dropped it
 * from `<queue>.dead-letter` once that deadline passed (found by following docs/rabbitmq.md). Each
 * backend must keep the copy after the deadline, until someone reads it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { encodeRequest, type WireMessage } from '../../shared/envelope.js';
import type { Transport } from '../../shared/transport/transport.js';
import { deadLetterQueue } from '../../sidecar/worker.js';
import { delay } from '../helpers/test-app.js';
import { newTransport, uniqueQueue, waitFor, type BackendName } from '../helpers/stack.js';

const backends: BackendName[] = ['memory', 'amqp', 'kafka'];

/** A request whose deadline is `ms` away, as the sidecar copies it to the dead-letter queue. */
function copyDueIn(queue: string, ms: number): WireMessage {
  const message = encodeRequest({
    id: 'de'.repeat(16),
    queue,
    replyTo: `kueuer.reply.${queue}.0000000000000000`,
    deadline: Date.now() + ms,
    enqueuedAt: Date.now(),
    method: 'POST',
    path: '/poison',
    headers: [],
    body: Buffer.from('poison'),
  });
  return { meta: { ...message.meta, 'x-kueuer-dead-letter-reason': 'the app answered 500 3 times' }, body: message.body };
}

describe.each(backends)('a dead-lettered copy on %s', (backend) => {
  const transports: Transport[] = [];
  afterEach(async () => {
    for (const t of transports.splice(0)) await t.close();
  });

  it('is still there after its request deadline passed, for an operator to read', async () => {
    const t = await newTransport(backend);
    transports.push(t);
    const queue = uniqueQueue('dlq');
    await t.publishRequest(deadLetterQueue(queue), copyDueIn(queue, 300), { timeoutMs: 15_000 });
    await delay(1500);
    const read: WireMessage[] = [];
    const consumer = await t.consume(deadLetterQueue(queue), { concurrency: 1 }, async (delivery) => {
      read.push(delivery.message);
    });
    try {
      await waitFor(() => read.length === 1, 20_000, 'the dead-lettered copy');
      expect(read[0]!.body.toString()).toBe('poison');
      expect(read[0]!.meta['x-kueuer-dead-letter-reason']).toBe('the app answered 500 3 times');
    } finally {
      await consumer.stop();
    }
  });
});
