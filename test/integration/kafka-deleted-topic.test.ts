/**
 * kafkajs 2.2.4 (issue tulios/kafkajs#1622): once a topic a producer has sent to
 * is deleted, the producer's metadata refresh names that topic, fails with
 * UNKNOWN_TOPIC_OR_PARTITION, and every later send, to any topic, fails with
 * "This server does not host this topic-partition". A sidecar replies to each
 * responder's inbox topic, and an inbox topic is deleted when its responder
 * goes (a rolling update, the sweeper): found on the real node, where a
 * sidecar then could not publish any reply. The transport renews its producer.
 * On the real broker.
 */
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeResponse } from '../../shared/envelope.js';
import type { Transport } from '../../shared/transport/transport.js';
import { brokers, newTransport } from '../helpers/stack.js';

describe('a Kafka reply topic deleted under a sidecar', () => {
  const url = new URL(brokers().kafka);
  const admin = new Kafka({ brokers: [url.host], logLevel: logLevel.NOTHING }).admin();
  let transport: Transport;
  const suffix = `${Date.now().toString(16)}${Math.floor(Math.random() * 1e6).toString(16)}`.slice(0, 16).padEnd(16, '0');
  const first = `kueuer.reply.deleted.one.${suffix}`;
  const second = `kueuer.reply.deleted.two.${suffix}`;

  beforeAll(async () => {
    await admin.connect();
    await admin.createTopics({
      topics: [
        { topic: first, numPartitions: 1 },
        { topic: second, numPartitions: 1 },
      ],
      waitForLeaders: true,
    });
    transport = await newTransport('kafka');
  });
  afterAll(async () => {
    await transport?.close();
    await admin.deleteTopics({ topics: [second] }).catch(() => undefined);
    await admin.disconnect();
  });

  const reply = (id: string) => encodeResponse({ id, queue: 'deleted', status: 200, headers: [], body: Buffer.from(id) });

  it('still publishes to a live reply topic after another one it published to was deleted', async () => {
    await transport.publishReply(first, reply('a'.repeat(32)), { timeoutMs: 10_000 });
    await admin.deleteTopics({ topics: [first] });
    // The sidecar's worker tries a reply again until its deadline; here: for up to 20 s.
    const started = Date.now();
    let last: unknown;
    for (;;) {
      try {
        await transport.publishReply(second, reply('b'.repeat(32)), { timeoutMs: 5_000 });
        break;
      } catch (err) {
        last = err;
        if (Date.now() - started > 20_000) throw new Error(`no reply published to ${second} in 20 s: ${(last as Error).message}`);
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    const offsets = await admin.fetchTopicOffsets(second);
    expect(offsets.map((o) => o.high)).toEqual(['1']);
    console.log(`published to a live reply topic ${Date.now() - started} ms after another was deleted`);
  }, 60_000);
});
