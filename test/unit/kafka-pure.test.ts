import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isInboxTopic, kafkaAuth, parseKafkaUrl } from '../../shared/transport/kafka/config.js';
import { computeLag } from '../../shared/transport/kafka/depth.js';
import type { Producer } from 'kafkajs';
import pino from 'pino';
import { ContiguousOffsets, requeueFailedCommits } from '../../shared/transport/kafka/offsets.js';
import { isRebalancing } from '../../shared/transport/kafka/request-consumer.js';
import type { OutgoingRecord } from '../../shared/transport/kafka/records.js';
import { Slots } from '../../shared/transport/kafka/slots.js';
import { TransactionalCommits } from '../../shared/transport/kafka/transactions.js';

describe('kafka backend URL', () => {
  it('takes one or more brokers and the tls and sasl parameters', () => {
    expect(parseKafkaUrl('kafka://k1:9092,k2:9093')).toEqual({ brokers: ['k1:9092', 'k2:9093'], tls: false });
    expect(parseKafkaUrl('kafka://k1:9092?tls=true&sasl=scram-sha-512')).toEqual({ brokers: ['k1:9092'], tls: true, sasl: 'scram-sha-512' });
  });

  it.each([
    ['kafka://', /no broker/],
    ['kafka://k1', /not host:port/],
    ['kafka://user:pw@k1:9092', /credentials do not go in the URL/],
    ['kafka://k1:9092?sasl=gssapi', /no GSSAPI/],
    ['kafka://k1:9092?acks=1', /unknown parameter "acks"/],
  ])('refuses %s', (url, message) => expect(() => parseKafkaUrl(url)).toThrow(message));
});

describe('kafka credentials', () => {
  it('come from env vars or mounted files, never the URL', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kafka-auth-'));
    writeFileSync(join(dir, 'password'), 's3cret\n');
    const spec = parseKafkaUrl('kafka://k1:9092?sasl=plain');
    expect(kafkaAuth(spec, { KUEUER_KAFKA_USERNAME: 'app', KUEUER_KAFKA_PASSWORD_FILE: join(dir, 'password') })).toEqual({
      sasl: { mechanism: 'plain', username: 'app', password: 's3cret' },
    });
    expect(() => kafkaAuth(spec, {})).toThrow(/needs KUEUER_KAFKA_USERNAME and KUEUER_KAFKA_PASSWORD/);
    expect(kafkaAuth(parseKafkaUrl('kafka://k1:9092?tls=true'), {})).toEqual({ ssl: true });
  });
});

describe('lag', () => {
  it('is latest minus committed, summed over partitions, counting uncommitted partitions from their start', () => {
    expect(
      computeLag(
        [
          { partition: 0, offset: '100', low: '0' },
          { partition: 1, offset: '50', low: '10' },
          { partition: 2, offset: '7', low: '0' },
        ],
        [
          { partition: 0, offset: '90' },
          { partition: 1, offset: '-1' },
          { partition: 2, offset: '7' },
        ],
      ),
    ).toBe(10 + 40 + 0);
  });
});

describe('contiguous offsets', () => {
  it('moves the commit position only past offsets that are all done', () => {
    const o = new ContiguousOffsets(5n);
    expect(o.complete(7n)).toBeNull();
    expect(o.complete(6n)).toBeNull();
    expect(o.complete(5n)).toBe(8n);
    expect(o.complete(9n)).toBeNull();
    expect(o.complete(8n)).toBe(10n);
  });

  it('a later batch does not let the position pass requests still running', () => {
    const o = new ContiguousOffsets(0n);
    for (let i = 0n; i < 10n; i++) o.dispatched(i);
    for (let i = 0n; i < 6n; i++) o.complete(i);
    expect(o.position).toBe(6n);
    o.dispatched(10n); // the next batch, fetched while 6–9 still run
    expect(o.complete(10n)).toBeNull();
    expect(o.position).toBe(6n);
    for (const i of [7n, 8n, 9n]) o.complete(i);
    expect(o.complete(6n)).toBe(11n);
  });

  it('jumps a gap in the offsets once everything before it is done', () => {
    const o = new ContiguousOffsets(0n);
    o.dispatched(0n);
    o.dispatched(5n); // 1–4 do not exist
    expect(o.complete(5n)).toBeNull();
    expect(o.complete(0n)).toBe(6n);
    const idle = new ContiguousOffsets(3n);
    idle.dispatched(9n);
    expect(idle.complete(9n)).toBe(10n);
  });
});

describe('replay window after an assignment (x-kueuer-redelivered on Kafka)', () => {
  it('flags offsets from the committed position up to the end offset seen at assignment, and none after', () => {
    // Committed 5, partition end 9 at assignment: 5–8 may have been started by the previous owner.
    const o = new ContiguousOffsets(5n, 9n);
    expect([4n, 5n, 8n, 9n, 12n].map((x) => o.mayHaveRun(x))).toEqual([false, true, true, false, false]);
    expect(new ContiguousOffsets(5n).mayHaveRun(5n)).toBe(false);
  });

  it('a record this member already dispatched is not dispatched again when re-fetched after a rejoin', () => {
    const o = new ContiguousOffsets(0n);
    expect([0n, 1n, 2n].map((x) => o.dispatched(x))).toEqual([true, true, true]);
    o.complete(0n);
    // The commit of 1 failed or lagged; the group rejoined and kafkajs fetches from 1 again.
    expect([1n, 2n, 3n].map((x) => o.dispatched(x))).toEqual([false, false, true]);
    expect(o.complete(1n)).toBe(2n);
  });
});

describe('failed offset commits', () => {
  it('go back into the next commit unless a newer position or a lost partition supersedes them', () => {
    const pending = new Map<number, bigint>([[1, 30n]]);
    requeueFailedCommits(
      [
        [0, 10n],
        [1, 20n],
        [2, 7n],
      ],
      pending,
      (p) => p !== 2,
    );
    expect([...pending].sort()).toEqual([
      [0, 10n],
      [1, 30n],
    ]);
  });
});

describe('backpressure slots', () => {
  it('reports full once a record waits, and room again only at half free', async () => {
    const events: string[] = [];
    const slots = new Slots(
      4,
      () => events.push('full'),
      () => events.push('room'),
    );
    for (let i = 0; i < 4; i++) await slots.acquire();
    expect(events).toEqual([]); // all taken, but nobody waits yet
    const waiting = slots.acquire();
    expect(events).toEqual(['full']);
    slots.release(); // handed to the waiter
    await waiting;
    slots.release(); // 1 free of 4
    expect(events).toEqual(['full']);
    slots.release(); // 2 free of 4
    expect(events).toEqual(['full', 'room']);
    slots.release();
    slots.release();
    expect(events).toEqual(['full', 'room']);
  });
});

describe('transactional commits', () => {
  /** A producer whose transactions record what they carried; `failNext` makes the next commit fail. */
  function fakeProducer() {
    const committed: Array<{ replies: string[]; offsets: Array<{ partition: number; offset: string }> }> = [];
    let failNext = false;
    const producer = {
      transaction: async () => {
        const replies: string[] = [];
        let offsets: Array<{ partition: number; offset: string }> = [];
        return {
          sendBatch: async ({ topicMessages }: { topicMessages: Array<{ messages: Array<{ key: string }> }> }) => {
            for (const t of topicMessages) replies.push(...t.messages.map((m) => m.key));
          },
          sendOffsets: async ({ topics }: { topics: Array<{ partitions: Array<{ partition: number; offset: string }> }> }) => {
            offsets = topics[0]!.partitions;
          },
          commit: async () => {
            if (failNext) {
              failNext = false;
              throw new Error('broker went away');
            }
            committed.push({ replies, offsets });
          },
          abort: async () => undefined,
        };
      },
      connect: async () => undefined,
      disconnect: async () => undefined,
    };
    return { producer: producer as unknown as Producer, committed, failNextCommit: () => (failNext = true) };
  }
  const reply = (id: string): OutgoingRecord[] => [{ topic: 'kueuer.reply.q.1', message: { key: id, value: Buffer.from(id), headers: {} } }];

  it('commits a reply only with the offset that covers it, holding out-of-order ones', async () => {
    const { producer, committed } = fakeProducer();
    const tx = new TransactionalCommits(() => producer, 'group', 'kueuer.q', pino({ level: 'silent' }));
    const tracker = new ContiguousOffsets(10n);
    tx.finished(0, tracker, 11n, reply('r11'), tracker.complete(11n));
    tx.finished(0, tracker, 12n, reply('r12'), tracker.complete(12n));
    await tx.close();
    expect(committed).toEqual([]); // 10 still running: nothing may be committed
    const tx2 = new TransactionalCommits(() => producer, 'group', 'kueuer.q', pino({ level: 'silent' }));
    const t2 = new ContiguousOffsets(10n);
    tx2.finished(0, t2, 11n, reply('r11'), t2.complete(11n));
    tx2.finished(0, t2, 10n, reply('r10'), t2.complete(10n));
    await tx2.close();
    expect(committed).toEqual([{ replies: ['r10', 'r11'], offsets: [{ partition: 0, offset: '12' }] }]);
  });

  it('retries a failed transaction with the same replies and position', async () => {
    const { producer, committed, failNextCommit } = fakeProducer();
    const tx = new TransactionalCommits(() => producer, 'group', 'kueuer.q', pino({ level: 'silent' }));
    const tracker = new ContiguousOffsets(0n);
    failNextCommit();
    tx.finished(3, tracker, 0n, reply('a'), tracker.complete(0n));
    await tx.close();
    expect(committed).toEqual([{ replies: ['a'], offsets: [{ partition: 3, offset: '1' }] }]);
  });

  it('retries with a backoff until it commits while running, and gives up after three failures in a row once stopping', async () => {
    const { producer, committed, failNextCommit } = fakeProducer();
    let attempts = 0;
    const failing = {
      ...(producer as unknown as Record<string, unknown>),
      transaction: async () => {
        attempts++;
        const t = await producer.transaction();
        failNextCommit();
        return t;
      },
    } as unknown as Producer;
    const tx = new TransactionalCommits(() => failing, 'group', 'kueuer.q', pino({ level: 'silent' }));
    const tracker = new ContiguousOffsets(0n);
    const started = Date.now();
    tx.finished(0, tracker, 0n, reply('a'), tracker.complete(0n));
    // The first transaction is connect()'s begin-and-abort; then a commit at 0, 100, 300 and 700 ms:
    // still trying after the third failure while running, with the backoff between.
    while (attempts < 5 && Date.now() - started < 10_000) await new Promise((r) => setTimeout(r, 10));
    expect(attempts).toBe(5);
    expect(Date.now() - started).toBeGreaterThanOrEqual(100 + 200 + 400);
    const before = attempts;
    await tx.close();
    // Stopping: the attempt under way and at most two more, then the replies are dropped (redelivered elsewhere).
    expect(attempts - before).toBeLessThanOrEqual(3);
    expect(committed).toEqual([]);
  });
});

describe('transactional commits when the coordinator dies mid-commit', () => {
  it('hand over to a new producer when the cut-off transaction cannot be aborted, and commit its replies and position', async () => {
    const committed: Array<{ replies: string[]; offsets: Array<{ partition: number; offset: string }> }> = [];
    let made = 0;
    /** The first producer's commit is cut off; kafkajs then refuses every transaction on it ("state COMMITTING"). */
    const newProducer = () => {
      const n = ++made;
      let stuck = false;
      return {
        connect: async () => undefined,
        disconnect: async () => undefined,
        transaction: async () => {
          if (stuck) throw new Error('Transaction state exception: Cannot call "beginTransaction" in state "COMMITTING"');
          const replies: string[] = [];
          let offsets: Array<{ partition: number; offset: string }> = [];
          let used = false;
          return {
            sendBatch: async ({ topicMessages }: { topicMessages: Array<{ messages: Array<{ key: string }> }> }) => {
              used = true;
              for (const t of topicMessages) replies.push(...t.messages.map((m) => m.key));
            },
            sendOffsets: async ({ topics }: { topics: Array<{ partitions: Array<{ partition: number; offset: string }> }> }) => {
              offsets = topics[0]!.partitions;
            },
            commit: async () => {
              if (n === 1) {
                stuck = true;
                throw new Error('Closed connection');
              }
              committed.push({ replies, offsets });
            },
            abort: async () => {
              if (stuck && used) throw new Error('Transaction state exception: Invalid state transition "COMMITTING" -> "ABORTING"');
            },
          };
        },
      } as unknown as Producer;
    };
    const tx = new TransactionalCommits(newProducer, 'group', 'kueuer.q', pino({ level: 'silent' }));
    await tx.connect();
    const tracker = new ContiguousOffsets(0n);
    tx.finished(0, tracker, 0n, [{ topic: 'kueuer.reply.q.1', message: { key: 'a', value: Buffer.from('a'), headers: {} } }], tracker.complete(0n));
    await new Promise((r) => setTimeout(r, 500));
    await tx.close();
    expect(made).toBe(2);
    expect(committed).toEqual([{ replies: ['a'], offsets: [{ partition: 0, offset: '1' }] }]);
  });
});

describe('isRebalancing (stop dispatching a fetched batch once the group rebalances)', () => {
  it("is true for kafkajs's rebalance heartbeat errors and false for anything else", () => {
    for (const type of ['REBALANCE_IN_PROGRESS', 'NOT_COORDINATOR_FOR_GROUP', 'ILLEGAL_GENERATION']) expect(isRebalancing({ type })).toBe(true);
    for (const err of [{ type: 'REQUEST_TIMED_OUT' }, new Error('socket hang up'), null, undefined, 'REBALANCE_IN_PROGRESS'])
      expect(isRebalancing(err)).toBe(false);
  });
});

describe('the reply-topic sweeper', () => {
  it("takes only responders' inbox topics, never a queue's results topic or a request topic", () => {
    expect(isInboxTopic('kueuer.reply.shop-orders.0123456789abcdef')).toBe(true);
    expect(isInboxTopic('kueuer.reply.shop-orders.async')).toBe(false);
    // A queue named like an inbox's suffix still has its results topic end in .async.
    expect(isInboxTopic('kueuer.reply.0123456789abcdef.async')).toBe(false);
    expect(isInboxTopic('kueuer.shop-orders')).toBe(false);
    expect(isInboxTopic('kueuer.reply.shop-orders.0123456789ABCDEF')).toBe(false);
  });
});
