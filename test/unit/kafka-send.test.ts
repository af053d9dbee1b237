/**
 * Producing to Kafka while a partition leader moves (issue 21): what a send
 * that resolved really wrote, which records a failed send takes down with it,
 * and how a request that may already be in Kafka is sent again.
 *
 * The first block drives kafkajs 2.2.4's own produce path (sendMessages, its
 * retrier and partitioner) against a fake two-broker cluster, because that is
 * where a confirmed request went missing: the fault rows found lost requests
 * that were in no partition of the request topic.
 */
import { createRequire } from 'node:module';
import type { Consumer as KafkaConsumer, EachBatchPayload, Producer } from 'kafkajs';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { sendFailure, sendRequestRecord } from '../../shared/transport/kafka/publish.js';
import { REPUBLISHED_HEADER, type OutgoingRecord } from '../../shared/transport/kafka/records.js';
import { KafkaRequestConsumer } from '../../shared/transport/kafka/request-consumer.js';
import { TickBatcher } from '../../shared/transport/kafka/tick-batcher.js';
import type { Delivery } from '../../shared/transport/transport.js';

const require = createRequire(import.meta.url);

type Send = (args: { acks: number; topicMessages: Array<{ topic: string; messages: Array<OutgoingRecord['message']> }> }) => Promise<unknown>;
const createSendMessages = require('kafkajs/src/producer/sendMessages.js') as (deps: Record<string, unknown>) => Send;
const createRetry = require('kafkajs/src/retry/index.js') as (options: Record<string, number>) => unknown;
const createPartitioner = require('kafkajs/src/producer/partitioners/default/index.js') as () => unknown;
const { createErrorFromCode } = require('kafkajs/src/protocol/error.js') as { createErrorFromCode: (code: number) => Error };
const kafkajsErrors = require('kafkajs/src/errors.js') as Record<string, new (message: string, extra?: Record<string, unknown>) => Error>;

const NOT_LEADER_OR_FOLLOWER = 6;
const silent = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

/**
 * Brokers 1 and 2 lead partitions 0 and 1 of topic `t`. Broker 1 is being
 * shut down: its next produce answers NOT_LEADER_OR_FOLLOWER a little after
 * broker 2 has answered, and partition 0's leadership has moved to broker 2.
 * `written` is what the brokers appended.
 */
function movingLeaderCluster(retries = 2) {
  const written: Array<{ broker: number; partition: number; key: string }> = [];
  const leaders = [1, 2];
  const broker = (nodeId: number) => ({
    nodeId,
    produce: async ({ topicData }: { topicData: Array<{ topic: string; partitions: Array<{ partition: number; messages: Array<{ key: string }> }> }> }) => {
      if (nodeId === 1 && leaders[0] === 1) {
        await new Promise((r) => setTimeout(r, 20));
        leaders[0] = 2;
        throw createErrorFromCode(NOT_LEADER_OR_FOLLOWER);
      }
      for (const t of topicData)
        for (const p of t.partitions) for (const m of p.messages) written.push({ broker: nodeId, partition: Number(p.partition), key: m.key });
      return {
        topics: topicData.map((t) => ({
          topicName: t.topic,
          partitions: t.partitions.map((p) => ({ partition: p.partition, errorCode: 0, baseOffset: '0', logAppendTime: '-1' })),
        })),
      };
    },
  });
  const brokers = new Map([1, 2].map((n) => [n, broker(n)]));
  const cluster = {
    refreshMetadataIfNecessary: async () => undefined,
    refreshMetadata: async () => undefined,
    addMultipleTargetTopics: async () => undefined,
    isConnected: () => true,
    removeBroker: () => undefined,
    findTopicPartitionMetadata: () => leaders.map((leader, partitionId) => ({ partitionId, leader })),
    findLeaderForPartitions: (_topic: string, partitions: string[]) => {
      const byLeader: Record<number, number[]> = {};
      for (const p of partitions) (byLeader[leaders[Number(p)]!] ??= []).push(Number(p));
      return byLeader;
    },
    findBroker: async ({ nodeId }: { nodeId: number | string }) => brokers.get(Number(nodeId)),
  };
  const eosManager = {
    acquireBrokerLock: async () => undefined,
    releaseBrokerLock: async () => undefined,
    isTransactional: () => false,
    getSequence: () => 0,
    updateSequence: () => undefined,
    getProducerId: () => -1,
    getProducerEpoch: () => 0,
    getTransactionalId: () => undefined,
  };
  const send = createSendMessages({
    logger: silent,
    cluster,
    partitioner: createPartitioner(),
    eosManager,
    retrier: createRetry({ initialRetryTime: 1, retries, maxRetryTime: 5 }),
  });
  const producer = { sendBatch: (args: Parameters<Send>[0]) => send(args) } as unknown as Producer;
  return { written, send, producer };
}

const record = (key: string, partition?: number): OutgoingRecord['message'] => ({
  key,
  value: Buffer.from(key),
  headers: { 'kueuer-id': key },
  ...(partition === undefined ? {} : { partition }),
});

describe("kafkajs 2.2.4's produce path while a partition leader moves", () => {
  it('resolves a send spanning two leaders without writing the records whose partition moved to the broker that had answered', async () => {
    // The root cause of "confirmed but never consumed": kafkajs keeps each broker's answer across
    // retries and, on a retry, sends only to brokers without one; partition 0 now belongs to broker 2,
    // which already answered for partition 1, so partition 0's record is never sent, and the send resolves.
    const { written, send } = movingLeaderCluster();
    await expect(send({ acks: -1, topicMessages: [{ topic: 't', messages: [record('a', 0), record('b', 1)] }] })).resolves.toBeDefined();
    expect(written.map((w) => w.key)).toEqual(['b']);
  });
});

describe('the tick batcher', () => {
  it('confirms a record only once a broker wrote it, even when its leader moves mid-send', async () => {
    const { written, producer } = movingLeaderCluster();
    const batcher = new TickBatcher(() => producer);
    const sent = ['a', 'b'].map((key, partition) => batcher.send('t', record(key, partition)).then(() => key));
    const confirmed = (await Promise.allSettled(sent)).flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    const keys = written.map((w) => w.key);
    for (const key of confirmed) expect(keys, `record ${key} was confirmed`).toContain(key);
  });

  it("settles each partition's records by that partition's send: a failure elsewhere does not reject records a broker wrote", async () => {
    const calls: Array<Array<number | undefined>> = [];
    const producer = {
      sendBatch: async ({ topicMessages }: Parameters<Send>[0]) => {
        const partitions = topicMessages.flatMap((t) => t.messages.map((m) => m.partition));
        calls.push(partitions);
        // Partition 0 of topic t has lost its leader.
        if (topicMessages.some((t) => t.topic === 't' && t.messages.some((m) => m.partition === 0))) throw createErrorFromCode(NOT_LEADER_OR_FOLLOWER);
      },
    } as unknown as Producer;
    const batcher = new TickBatcher(() => producer);
    const [p0, p1, p1b, reply] = await Promise.allSettled([
      batcher.send('t', record('a', 0)),
      batcher.send('t', record('b', 1)),
      batcher.send('t', record('c', 1)),
      batcher.send('reply', record('r', 0)),
    ]);
    expect(p0.status).toBe('rejected');
    expect([p1.status, p1b.status, reply.status]).toEqual(['fulfilled', 'fulfilled', 'fulfilled']);
    // One produce request per partition: the fate of each is one broker's answer for it alone.
    expect(calls.map((c) => c.join(',')).sort()).toEqual(['0', '0', '1,1']);
  });
});

describe('a failed produce: was the record written?', () => {
  const { KafkaJSRequestTimeoutError, KafkaJSConnectionError, KafkaJSConnectionClosedError, KafkaJSNumberOfRetriesExceeded, KafkaJSNonRetriableError } =
    kafkajsErrors;
  const exhausted = (e: Error) => new KafkaJSNumberOfRetriesExceeded!(e as unknown as string, { retryCount: 0, retryTime: 1 });

  it('is not when the broker refused it or no connection was made, maybe when the answer was lost, and a refusal for good is not retried', () => {
    expect(sendFailure(exhausted(createErrorFromCode(19)))).toBe('not-written'); // NOT_ENOUGH_REPLICAS
    expect(sendFailure(exhausted(createErrorFromCode(3)))).toBe('not-written'); // UNKNOWN_TOPIC_OR_PARTITION
    // Also the answer of a leader that appended, then lost its leadership waiting for the replicas.
    expect(sendFailure(exhausted(createErrorFromCode(NOT_LEADER_OR_FOLLOWER)))).toBe('maybe-written');
    expect(sendFailure(exhausted(new KafkaJSConnectionError!('Connection error: connect ECONNREFUSED', { code: 'ECONNREFUSED' })))).toBe('not-written');
    expect(sendFailure(exhausted(new KafkaJSConnectionError!('Not connected')))).toBe('not-written');
    expect(sendFailure(exhausted(new KafkaJSRequestTimeoutError!('Request Produce(key: 0, version: 7) timed out')))).toBe('maybe-written');
    expect(sendFailure(exhausted(new KafkaJSConnectionClosedError!('Closed connection', { host: 'b1', port: 9092 })))).toBe('maybe-written');
    expect(sendFailure(exhausted(new KafkaJSConnectionError!('Connection error: read ECONNRESET', { code: 'ECONNRESET' })))).toBe('maybe-written');
    expect(sendFailure(exhausted(createErrorFromCode(20)))).toBe('maybe-written'); // NOT_ENOUGH_REPLICAS_AFTER_APPEND
    expect(sendFailure(exhausted(createErrorFromCode(7)))).toBe('maybe-written'); // REQUEST_TIMED_OUT
    expect(sendFailure(new Error('something else'))).toBe('maybe-written');
    const tooLarge = createErrorFromCode(10);
    expect(sendFailure(new KafkaJSNonRetriableError!(tooLarge as unknown as string, { cause: tooLarge }))).toBe('refused'); // MESSAGE_TOO_LARGE
    expect(sendFailure(createErrorFromCode(29))).toBe('refused'); // TOPIC_AUTHORIZATION_FAILED
  });
});

describe('sending a request again after a failed produce', () => {
  const leaders = {
    partitionFor: async (_t: string, _k: string, failed: ReadonlySet<number>) => [0, 1, 2].find((p) => !failed.has(p)),
    refresh: async () => undefined,
  };
  const { KafkaJSRequestTimeoutError, KafkaJSNumberOfRetriesExceeded } = kafkajsErrors;
  const exhausted = (e: Error) => new KafkaJSNumberOfRetriesExceeded!(e as unknown as string, { retryCount: 0, retryTime: 1 });

  async function sends(first: Error) {
    const seen: Array<OutgoingRecord['message']> = [];
    const send = async (_topic: string, message: OutgoingRecord['message']) => {
      seen.push(message);
      if (seen.length === 1) throw first;
    };
    await sendRequestRecord(send, leaders, 't', record('req-1'), Date.now() + 5000);
    return seen;
  }

  it('sends a request the broker may have written to the same partition, flagged as a possible republish', async () => {
    for (const err of [new KafkaJSRequestTimeoutError!('Request Produce timed out'), createErrorFromCode(NOT_LEADER_OR_FOLLOWER)]) {
      const seen = await sends(exhausted(err));
      expect(seen.map((m) => m.partition)).toEqual([0, 0]);
      expect(seen.map((m) => m.headers[REPUBLISHED_HEADER])).toEqual([undefined, '1']);
    }
  });

  it('sends a request the broker refused before appending to another partition, unflagged', async () => {
    const seen = await sends(exhausted(createErrorFromCode(19))); // NOT_ENOUGH_REPLICAS
    expect(seen.map((m) => m.partition)).toEqual([0, 1]);
    expect(seen.map((m) => m.headers[REPUBLISHED_HEADER])).toEqual([undefined, undefined]);
  });

  /**
   * The reply-leader fault row's 503s (docs/kafka.md, fault rows): a request in flight to a broker
   * that dies may be in the log, so its copy waits for that partition's new leader, which comes
   * only once the controller has fenced the dead broker (9 s and more). Meanwhile every attempt is
   * refused at connect (nothing written), and the copy must still not move: the first copy may
   * surface on the new leader, and the app would then get it after a flagged copy, unflagged.
   */
  function leaderDiesMidSend(leaderBackAfterMs: number) {
    const { KafkaJSConnectionClosedError, KafkaJSConnectionError } = kafkajsErrors;
    const seen: Array<OutgoingRecord['message']> = [];
    const diedAt = Date.now();
    const send = async (_topic: string, message: OutgoingRecord['message']) => {
      seen.push(message);
      if (seen.length === 1) throw exhausted(new KafkaJSConnectionClosedError!('Closed connection', { host: 'b1', port: 9092 }));
      if (message.partition === 0 && Date.now() - diedAt < leaderBackAfterMs)
        throw exhausted(new KafkaJSConnectionError!('Failed to connect: connect ECONNREFUSED', { code: 'ECONNREFUSED' }));
    };
    return { seen, send };
  }

  it('keeps a request whose leader died mid-send on its partition, flagged, through refused connects until the new leader takes it', async () => {
    const { seen, send } = leaderDiesMidSend(400);
    await sendRequestRecord(send, leaders, 't', record('req-1'), Date.now() + 5_000);
    expect(seen.length).toBeGreaterThan(2);
    expect(new Set(seen.map((m) => m.partition))).toEqual(new Set([0]));
    expect(seen.slice(1).every((m) => m.headers[REPUBLISHED_HEADER] === '1')).toBe(true);
  });

  it('gives up at the deadline (the responder answers 503 at --publish-timeout) when the new leader comes later', async () => {
    const { seen, send } = leaderDiesMidSend(60_000);
    const started = Date.now();
    await expect(sendRequestRecord(send, leaders, 't', record('req-1'), started + 600)).rejects.toThrow(/ECONNREFUSED/);
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(new Set(seen.map((m) => m.partition))).toEqual(new Set([0]));
  });

  it('gives up at once on a refusal for good', async () => {
    await expect(sends(createErrorFromCode(29))).rejects.toThrow(/authoriz/i);
  });
});

describe('the request consumer', () => {
  /** A kafkajs consumer that records commits; `batch` hands the worker one batch of partition 0. */
  function fakeConsumer() {
    let eachBatch: ((payload: EachBatchPayload) => Promise<void>) | undefined;
    const commits: string[] = [];
    const consumer = {
      subscribe: async () => undefined,
      run: async (config: { eachBatch: (payload: EachBatchPayload) => Promise<void> }) => {
        eachBatch = config.eachBatch;
      },
      pause: () => undefined,
      resume: () => undefined,
      stop: async () => undefined,
      disconnect: async () => undefined,
      commitOffsets: async (offsets: Array<{ offset: string }>) => void commits.push(...offsets.map((o) => o.offset)),
    } as unknown as KafkaConsumer;
    const batch = (topic: string, messages: unknown[]) =>
      eachBatch!({
        batch: { topic, partition: 0, highWatermark: String(messages.length), messages },
        resolveOffset: () => undefined,
        heartbeat: async () => undefined,
        isRunning: () => true,
        isStale: () => false,
      } as unknown as EachBatchPayload);
    return { consumer, commits, batch };
  }

  it('hands the app a republished copy of a request as a possible rerun (x-kueuer-redelivered)', async () => {
    const { consumer, batch } = fakeConsumer();
    const deliveries: Delivery[] = [];
    const worker = new KafkaRequestConsumer(
      consumer,
      't',
      { concurrency: 4 },
      'at-least-once',
      async (d) => void deliveries.push(d),
      pino({ level: 'silent' }),
      async () => new Map([[0, 0n]]),
    );
    worker.assigned([0]);
    await worker.start();
    const message = (offset: number, headers: Record<string, string>) => ({
      offset: String(offset),
      key: Buffer.from(`req-${offset}`),
      value: Buffer.from('x'),
      headers: { 'kueuer-id': `req-${offset}`, 'kueuer-deadline': String(Date.now() + 10_000), ...headers },
      timestamp: '0',
      attributes: 0,
    });
    await batch('t', [message(0, {}), message(1, { [REPUBLISHED_HEADER]: '1' })]);
    await new Promise((r) => setTimeout(r, 50));
    expect(deliveries.map((d) => [d.message.meta['kueuer-id'], d.redelivered])).toEqual([
      ['req-0', false],
      ['req-1', true],
    ]);
  });

  /** A request consumer on a fake kafkajs consumer given one record without a deadline (as results are), and its commits. */
  async function resultsConsumer(retryMode: 'until-deadline' | 'until-stopped', handler: (d: Delivery) => Promise<void>) {
    const { consumer, commits, batch } = fakeConsumer();
    const worker = new KafkaRequestConsumer(
      consumer,
      'kueuer.reply.q.async',
      { concurrency: 4 },
      'at-least-once',
      handler,
      pino({ level: 'silent' }),
      async () => new Map([[0, 0n]]),
      null,
      retryMode,
    );
    worker.assigned([0]);
    await worker.start();
    await batch('kueuer.reply.q.async', [
      { offset: '0', key: Buffer.from('r'), value: Buffer.from('x'), headers: { 'kueuer-id': 'r' }, timestamp: '0', attributes: 0 },
    ]);
    return { worker, commits };
  }

  it('until-stopped (asynchronous results): a failing handler is called again until it succeeds, and only then committed past', async () => {
    let calls = 0;
    const { worker, commits } = await resultsConsumer('until-stopped', async () => {
      if (++calls < 4) throw new Error('store down');
    });
    await new Promise((r) => setTimeout(r, 250));
    expect(calls).toBeGreaterThanOrEqual(2);
    expect(commits).toEqual([]);
    await new Promise((r) => setTimeout(r, 1_200));
    expect(calls).toBe(4);
    expect(commits).toEqual(['1']);
    await worker.stop();
  });

  it('until-stopped: a handler still failing when the consumer stops leaves its record uncommitted for the next reader', async () => {
    let calls = 0;
    const { worker, commits } = await resultsConsumer('until-stopped', async () => {
      calls++;
      throw new Error('store down');
    });
    await new Promise((r) => setTimeout(r, 150));
    await worker.stop();
    expect(calls).toBeGreaterThanOrEqual(2);
    expect(commits).toEqual([]);
  });

  it('until-deadline (requests): a record without a deadline is given up after its first failure and committed past', async () => {
    let calls = 0;
    const { worker, commits } = await resultsConsumer('until-deadline', async () => {
      calls++;
      throw new Error('reply failed');
    });
    await new Promise((r) => setTimeout(r, 150));
    expect(calls).toBe(1);
    expect(commits).toEqual(['1']);
    await worker.stop();
  });
});
