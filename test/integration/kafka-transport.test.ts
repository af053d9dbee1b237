/** The Kafka backend's own duties against the real broker: lag (its depth reader), and sweeping reply topics left by dead responders. */
import { Kafka, logLevel } from 'kafkajs';
// The test's own clients get the same guard as Kueuer's (no TimeoutNegativeWarning on Node 24).
import '../../shared/transport/kafka/client.js';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { parseBackend } from '../../shared/transport/backend.js';
import { openQueueDepth } from '../../shared/transport/create-transport.js';
import type { KafkaTransport } from '../../shared/transport/kafka/transport.js';
import type { QueueDepthReader } from '../../shared/transport/transport.js';
import { emptyGet } from '../helpers/envelopes.js';
import { newTransport, silentLog, uniqueQueue, waitFor } from '../helpers/stack.js';

const kafkaUrl = inject('kafkaUrl');
const brokers = [kafkaUrl.replace('kafka://', '')];

describe('kafka transport', () => {
  const transports: KafkaTransport[] = [];
  const readers: QueueDepthReader[] = [];
  const open = async () => {
    const t = (await newTransport('kafka')) as KafkaTransport;
    transports.push(t);
    return t;
  };
  const openDepth = async () => {
    const d = await openQueueDepth(parseBackend(kafkaUrl), silentLog);
    readers.push(d);
    return d;
  };
  afterAll(async () => {
    for (const t of transports) await t.close();
    for (const d of readers) await d.close();
  });

  it('reports lag as KEDA does: latest minus committed, over all partitions', { timeout: 30_000 }, async () => {
    const t = await open();
    const depth = await openDepth();
    const queue = uniqueQueue('lag');
    const request = () => emptyGet(queue);
    for (let i = 0; i < 5; i++) await t.publishRequest(queue, request(), { timeoutMs: 5000 });
    expect((await depth.read(queue)).backlog).toBe(5);
    let handled = 0;
    const consumer = await t.consume(queue, { concurrency: 2 }, async () => {
      handled++;
    });
    await waitFor(() => handled === 5, 20_000, 'five requests handled');
    await waitFor(async () => (await depth.read(queue)).backlog === 0, 10_000, 'the lag to reach 0 once committed');
    await consumer.stop();
  });

  it('gives the autoscaler the backlog and the partition count (its max-replicas cap)', { timeout: 30_000 }, async () => {
    const t = await open();
    const depth = await openDepth();
    const queue = uniqueQueue('depth');
    expect(await depth.read(queue)).toEqual({ backlog: 0 }); // no topic yet: nothing waits, no partition cap
    const request = () => emptyGet(queue);
    for (let i = 0; i < 3; i++) await t.publishRequest(queue, request(), { timeoutMs: 5000 });
    expect(await depth.read(queue)).toEqual({ backlog: 3, partitions: 3 }); // newTransport creates request topics with 3
  });

  it('deletes reply topics whose responder died, and keeps live ones', { timeout: 30_000 }, async () => {
    const survivor = await open();
    const live = await survivor.openReplyInbox(uniqueQueue('live'), () => undefined);
    await waitFor(() => survivor.isReady(), 20_000, 'the live inbox');

    // A responder that dies without cleaning up: its inbox consumer is gone, its topic stays.
    const admin = new Kafka({ brokers, logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    const orphan = `kueuer.reply.${uniqueQueue('dead')}.0123456789abcdef`;
    await admin.createTopics({ topics: [{ topic: orphan, numPartitions: 1 }], waitForLeaders: true });

    // Other test files run responders at the same time: sweep only this test's topics.
    const mine = (t: string) => t === orphan || t === live.address;
    // A grace of 3 s: two sweeps back to back stay within it even on a loaded machine (200 ms did not).
    expect(await survivor.sweepAbandonedInboxes(3000, mine)).toEqual([]); // first sighting starts the grace
    expect(await survivor.sweepAbandonedInboxes(3000, mine)).toEqual([]); // still within it
    await new Promise((r) => setTimeout(r, 3100));
    expect(await survivor.sweepAbandonedInboxes(3000, mine)).toEqual([orphan]);
    const topics = await admin.listTopics();
    expect(topics).not.toContain(orphan);
    expect(topics).toContain(live.address);
    await admin.disconnect();
    await live.close();
    expect(
      await (async () => {
        const a = new Kafka({ brokers, logLevel: logLevel.NOTHING }).admin();
        await a.connect();
        const list = await a.listTopics();
        await a.disconnect();
        return list;
      })(),
    ).not.toContain(live.address); // a clean shutdown deletes its own topic
  });
});
