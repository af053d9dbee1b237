/**
 * The RabbitMQ backend's queue types and failover duties against the shared
 * single node: quorum request and dead-letter queues by default, classic on
 * request, an existing queue of another type used as it is (and named in the
 * log), quorum's delivery limit for a request that fails every consumer, a
 * consumer the broker cancels resuming, a publish the broker returns being
 * declared and sent again, a republished copy seen as a redelivery, and a URL
 * naming several nodes.
 */
import net from 'node:net';
import amqp from 'amqplib';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { encodeResponse, type WireMessage } from '../../shared/envelope.js';
import { isKueuerError } from '../../shared/errors.js';
import { parseBackend } from '../../shared/transport/backend.js';
import { createTransport } from '../../shared/transport/create-transport.js';
import { managementUrlFor, RabbitMqDepth } from '../../shared/transport/amqp/depth.js';
import { REPUBLISHED_HEADER } from '../../shared/transport/amqp/consumer.js';
import { REPLY_INBOX_EXPIRES_MS } from '../../shared/transport/amqp/queues.js';
import type { Delivery, Transport } from '../../shared/transport/transport.js';
import { emptyGet } from '../helpers/envelopes.js';
import { brokers, uniqueQueue, waitFor } from '../helpers/stack.js';

const amqpUrl = (): string => brokers().amqp;

/** A transport whose log lines are kept, to read what it said. */
async function transportWithLog(
  options: { url?: string; queueType?: 'quorum' | 'classic' } = {},
): Promise<{ t: Transport; lines: Array<Record<string, unknown>> }> {
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) });
  const t = await createTransport(parseBackend(options.url ?? amqpUrl()), log, {
    visibilityTimeoutMs: 0,
    kafkaPartitions: 1,
    delivery: 'at-least-once',
    ...(options.queueType ? { rabbitmqQueueType: options.queueType } : {}),
  });
  await waitFor(() => t.isReady(), 20_000, 'amqp transport to connect');
  return { t, lines };
}

/** The queue as the management API shows it (type, arguments, message count). */
async function queueInfo(
  queue: string,
): Promise<{ type: string; arguments: Record<string, unknown>; messages: number; exclusive: boolean; durable: boolean } | null> {
  const mgmt = managementUrlFor(amqpUrl(), `http://127.0.0.1:${Number(new URL(amqpUrl()).port) + 3}`);
  const res = await fetch(`${mgmt.base}/api/queues/${encodeURIComponent(mgmt.vhost)}/${encodeURIComponent(queue)}`, {
    headers: { authorization: mgmt.authorization },
  });
  if (res.status === 404) return null;
  return (await res.json()) as { type: string; arguments: Record<string, unknown>; messages: number; exclusive: boolean; durable: boolean };
}

/** The broker closes the transport's connection (through the management API), as a node going down does. */
async function dropConnection(t: Transport): Promise<void> {
  const localPort = (t as unknown as { model: { connection: { stream: { localPort: number } } } }).model.connection.stream.localPort;
  const mgmt = managementUrlFor(amqpUrl(), `http://127.0.0.1:${Number(new URL(amqpUrl()).port) + 3}`);
  const name = `127.0.0.1:${localPort} -> 127.0.0.1:${new URL(amqpUrl()).port}`;
  await waitFor(
    async () =>
      (await fetch(`${mgmt.base}/api/connections/${encodeURIComponent(name)}`, { method: 'DELETE', headers: { authorization: mgmt.authorization } })).ok,
    10_000,
    'the management API to know the connection',
  );
}

/** Runs `fn` on a plain amqplib channel of the shared node. */
async function withRawChannel<T>(fn: (ch: amqp.Channel) => Promise<T>): Promise<T> {
  const conn = await amqp.connect(amqpUrl());
  try {
    return await fn(await conn.createChannel());
  } finally {
    await conn.close().catch(() => undefined);
  }
}

function request(queue: string, id: string): WireMessage {
  return emptyGet(queue, id, `kueuer.reply.${queue}.0000000000000000`);
}

const ids = (n: number): string => n.toString(16).padStart(32, '0');

describe('amqp queue types', () => {
  it('declares request and dead-letter queues as quorum queues with a delivery limit by default', async () => {
    const { t } = await transportWithLog();
    try {
      const queue = uniqueQueue('quorum');
      await t.publishRequest(queue, request(queue, ids(1)), { timeoutMs: 5000 });
      await t.publishRequest(`${queue}.dead-letter`, request(queue, ids(2)), { timeoutMs: 5000 });
      const info = await queueInfo(queue);
      expect(info?.type).toBe('quorum');
      expect(info?.arguments['x-delivery-limit']).toBe(20);
      expect((await queueInfo(`${queue}.dead-letter`))?.type).toBe('quorum');
    } finally {
      await t.close();
    }
  });

  it('declares classic queues when asked (KUEUER_RABBITMQ_QUEUE_TYPE=classic)', async () => {
    const { t } = await transportWithLog({ queueType: 'classic' });
    try {
      const queue = uniqueQueue('classic');
      const consumer = await t.consume(queue, { concurrency: 1 }, async () => undefined);
      expect((await queueInfo(queue))?.type).toBe('classic');
      await consumer.stop();
    } finally {
      await t.close();
    }
  });

  it('uses an existing queue of another type as it is and says which queue, which type and how to migrate', async () => {
    const queue = uniqueQueue('existing');
    await withRawChannel((ch) => ch.assertQueue(queue, { durable: true }));
    const { t, lines } = await transportWithLog();
    try {
      const got: Delivery[] = [];
      const consumer = await t.consume(queue, { concurrency: 1 }, async (d) => void got.push(d));
      await t.publishRequest(queue, request(queue, ids(3)), { timeoutMs: 5000 });
      await expect.poll(() => got.length, { timeout: 5000 }).toBe(1);
      expect((await queueInfo(queue))?.type).toBe('classic');
      const said = lines.find((l) => l.level === 50 && l.queue === queue);
      expect(said?.found).toBe('classic');
      expect(String(said?.msg)).toMatch(new RegExp(`queue ${queue} already exists as classic.*KUEUER_RABBITMQ_QUEUE_TYPE.*delete_queue --if-empty ${queue}`));
      await consumer.stop();
    } finally {
      await t.close();
      await withRawChannel((ch) => ch.deleteQueue(queue));
    }
  });

  it("drops a request that fails every delivery after quorum's delivery limit (20 redeliveries), not at its deadline", async () => {
    const { t } = await transportWithLog();
    try {
      const queue = uniqueQueue('poison');
      let calls = 0;
      const consumer = await t.consume(queue, { concurrency: 1 }, async () => {
        calls++;
        throw new Error('poison');
      });
      await t.publishRequest(queue, request(queue, ids(4)), { timeoutMs: 5000 });
      await expect.poll(async () => (await queueInfo(queue))?.messages, { timeout: 20_000 }).toBe(0);
      await new Promise((r) => setTimeout(r, 500));
      expect(calls).toBeGreaterThanOrEqual(20);
      expect(calls).toBeLessThanOrEqual(21);
      await consumer.stop();
    } finally {
      await t.close();
    }
  });
});

describe('amqp failover duties', () => {
  it('a consumer the broker cancels (its queue deleted) consumes again once the queue is back', async () => {
    const { t, lines } = await transportWithLog();
    try {
      const queue = uniqueQueue('cancelled');
      const got: string[] = [];
      const consumer = await t.consume(queue, { concurrency: 1 }, async (d) => void got.push(d.message.meta['kueuer-id'] ?? ''));
      await withRawChannel((ch) => ch.deleteQueue(queue));
      await expect.poll(() => lines.some((l) => /cancelled by the broker/.test(String(l.msg))), { timeout: 5000 }).toBe(true);
      await t.publishRequest(queue, request(queue, ids(5)), { timeoutMs: 5000 });
      await expect.poll(() => got, { timeout: 10_000 }).toEqual([ids(5)]);
      await consumer.stop();
    } finally {
      await t.close();
    }
  });

  it('a request the broker returns (its queue deleted after the declare) is declared again and delivered, not confirmed and dropped', async () => {
    const { t } = await transportWithLog();
    try {
      const queue = uniqueQueue('returned');
      await t.publishRequest(queue, request(queue, ids(6)), { timeoutMs: 5000 });
      await withRawChannel((ch) => ch.deleteQueue(queue));
      await t.publishRequest(queue, request(queue, ids(7)), { timeoutMs: 5000 });
      await expect.poll(async () => (await queueInfo(queue))?.messages, { timeout: 10_000 }).toBe(1);
    } finally {
      await t.close();
    }
  });

  it('a copy published again after a lost confirm reaches its consumer as a redelivery', async () => {
    const { t } = await transportWithLog();
    try {
      const queue = uniqueQueue('republished');
      const got: Delivery[] = [];
      const consumer = await t.consume(queue, { concurrency: 1 }, async (d) => void got.push(d));
      const copy = request(queue, ids(8));
      await withRawChannel(async (ch) => {
        ch.sendToQueue(queue, copy.body, { headers: { ...copy.meta, [REPUBLISHED_HEADER]: '1' } });
        ch.sendToQueue(queue, copy.body, { headers: copy.meta });
        await new Promise((r) => setTimeout(r, 200));
      });
      await expect.poll(() => got.map((d) => d.redelivered), { timeout: 5000 }).toEqual([true, false]);
      await consumer.stop();
    } finally {
      await t.close();
    }
  });

  it('stays ready through a reconnect, and a publish made meanwhile waits for the new connection instead of failing', async () => {
    const { t, lines } = await transportWithLog();
    try {
      const queue = uniqueQueue('reconnect');
      await t.publishRequest(queue, request(queue, ids(10)), { timeoutMs: 5000 });
      await dropConnection(t);
      await waitFor(() => lines.some((l) => l.msg === 'lost broker connection; reconnecting'), 5000, 'the transport to notice');
      expect(t.isReady()).toBe(true);
      await t.publishRequest(queue, request(queue, ids(11)), { timeoutMs: 5000 });
      await expect.poll(async () => (await queueInfo(queue))?.messages, { timeout: 10_000 }).toBe(2);
    } finally {
      await t.close();
    }
  });

  it('survives its connection being cut while it sets up its channels (a node dying mid-failover), and connects again', async () => {
    // The window between the AMQP handshake and the transport reporting connected: amqplib's recovery
    // listens for the connection's errors only after it. A node that dies then (or refuses a stream
    // consume with a connection error: "does not have a running local replica") emitted an 'error' no
    // one listened for, and the process died (a sidecar, in a fault row under load).
    const target = new URL(amqpUrl());
    let cuts = 0;
    const proxy = net.createServer((client) => {
      const upstream = net.connect(Number(target.port), target.hostname);
      for (const s of [client, upstream]) s.on('error', () => undefined);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
      upstream.on('data', (chunk: Buffer) => client.write(chunk));
      client.on('data', (chunk: Buffer) => {
        // confirm.select (class 85, method 10): the publisher channel of the set-up. Cut the first connection there.
        if (cuts === 0 && chunk.includes(Buffer.from([0x00, 0x55, 0x00, 0x0a]))) {
          cuts++;
          client.destroy();
          return;
        }
        upstream.write(chunk);
      });
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const uncaught: Error[] = [];
    const onUncaught = (err: Error): void => void uncaught.push(err);
    process.on('uncaughtException', onUncaught);
    try {
      const url = `amqp://${target.username}:${target.password}@127.0.0.1:${(proxy.address() as net.AddressInfo).port}${target.pathname === '/' ? '' : target.pathname}`;
      const { t, lines } = await transportWithLog({ url });
      try {
        expect(cuts).toBe(1);
        const queue = uniqueQueue('setup-cut');
        await t.publishRequest(queue, request(queue, ids(12)), { timeoutMs: 5000 });
        expect((await withRawChannel((ch) => ch.checkQueue(queue))).messageCount).toBe(1);
        expect(lines.some((l) => l.msg === 'connected to broker')).toBe(true);
      } finally {
        await t.close();
      }
      expect(uncaught.map((e) => e.message)).toEqual([]);
    } finally {
      process.off('uncaughtException', onUncaught);
      proxy.close();
    }
  }, 40_000);

  it('connects through a URL naming several nodes, skipping one that does not answer', async () => {
    const single = new URL(amqpUrl());
    const url = `amqp://${single.username}:${single.password}@127.0.0.1:1,${single.host}${single.pathname === '/' ? '' : single.pathname}`;
    const { t } = await transportWithLog({ url });
    try {
      const queue = uniqueQueue('multi');
      await t.publishRequest(queue, request(queue, ids(9)), { timeoutMs: 5000 });
      await expect.poll(async () => (await queueInfo(queue))?.messages, { timeout: 10_000 }).toBe(1);
    } finally {
      await t.close();
    }
  });

  it('moves on from a node that accepts the TCP connection but never answers the AMQP handshake', async () => {
    // A stuck broker, or a balancer that accepts and holds the socket: without a handshake timeout
    // the attempt waited forever and the next node was never tried.
    const held: net.Socket[] = [];
    const silent = net.createServer((socket) => held.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const single = new URL(amqpUrl());
    const url = `amqp://${single.username}:${single.password}@127.0.0.1:${(silent.address() as net.AddressInfo).port},${single.host}${single.pathname === '/' ? '' : single.pathname}`;
    try {
      const { t, lines } = await transportWithLog({ url });
      try {
        const queue = uniqueQueue('silent');
        await t.publishRequest(queue, request(queue, ids(10)), { timeoutMs: 5000 });
        // A passive declare counts it at once (the management API's counts lag by its stats interval).
        expect((await withRawChannel((ch) => ch.checkQueue(queue))).messageCount).toBe(1);
        expect(lines.some((l) => /timed out/.test(String(l.msg)))).toBe(true);
      } finally {
        await t.close();
      }
    } finally {
      for (const socket of held) socket.destroy();
      silent.close();
    }
  }, 40_000);

  it('reads a depth of 0 for a queue not declared yet from the real management API, and names a vhost that does not exist', async () => {
    const mgmt = `http://127.0.0.1:${Number(new URL(amqpUrl()).port) + 3}`;
    expect(await new RabbitMqDepth(amqpUrl(), mgmt).read(uniqueQueue('undeclared'))).toEqual({ backlog: 0 });
    const single = new URL(amqpUrl());
    const err = (await new RabbitMqDepth(`amqp://${single.username}:${single.password}@${single.host}/no-such-vhost`, mgmt)
      .read('x')
      .catch((e: unknown) => e)) as Error;
    expect(err.message).toMatch(/vhost "no-such-vhost" does not exist/);
  });

  it('refuses a cluster URL with an empty host as a bad backend URL', () => {
    expect(() => parseBackend('amqp://guest:guest@host1,,host3/')).toThrow(/empty host/);
  });
});

describe('amqp reply inboxes', () => {
  const reply = (queue: string, n: number): WireMessage => encodeResponse({ id: ids(100 + n), queue, status: 200, headers: [], body: Buffer.from(String(n)) });

  it('are quorum queues that expire once unused, not exclusive queues bound to one connection', async () => {
    const { t } = await transportWithLog();
    try {
      const inbox = await t.openReplyInbox(uniqueQueue('inbox'), () => undefined);
      const info = await queueInfo(inbox.address);
      expect(info).toMatchObject({ type: 'quorum', exclusive: false, durable: true });
      expect(info?.arguments['x-expires']).toBe(REPLY_INBOX_EXPIRES_MS);
      await inbox.close();
      // Closed: deleted at once, so a late reply to it fails fast as KUEUER_ERR_REPLY_INBOX_GONE.
      expect(await queueInfo(inbox.address)).toBeNull();
      const err = await t.publishReply(inbox.address, reply('q', 0), { timeoutMs: 5000 }).catch((e: unknown) => e);
      expect(isKueuerError(err, 'KUEUER_ERR_REPLY_INBOX_GONE')).toBe(true);
    } finally {
      await t.close();
    }
  });

  it('keeps the replies published while its responder reconnects, and delivers them after (none returned as gone)', async () => {
    const { t: responder, lines } = await transportWithLog();
    const { t: sidecar } = await transportWithLog();
    try {
      const queue = uniqueQueue('inbox-reconnect');
      const got = new Set<string>();
      const inbox = await responder.openReplyInbox(queue, (m) => got.add(m.body.toString()));
      await dropConnection(responder);
      // Replies every 20 ms from the moment the connection drops until well after it is back.
      const failures: string[] = [];
      for (let n = 0; n < 40; n++) {
        await sidecar.publishReply(inbox.address, reply(queue, n), { timeoutMs: 5000 }).catch((e: unknown) => failures.push((e as Error).message));
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(lines.some((l) => l.msg === 'lost broker connection; reconnecting')).toBe(true);
      expect(failures).toEqual([]);
      await expect.poll(() => got.size, { timeout: 15_000 }).toBe(40);
      await inbox.close();
    } finally {
      await responder.close();
      await sidecar.close();
    }
  });

  it('stay exclusive and auto-deleted with classic queues (KUEUER_RABBITMQ_QUEUE_TYPE=classic)', async () => {
    const { t } = await transportWithLog({ queueType: 'classic' });
    try {
      const inbox = await t.openReplyInbox(uniqueQueue('inbox-classic'), () => undefined);
      expect(await queueInfo(inbox.address)).toMatchObject({ type: 'classic', exclusive: true, durable: false });
      await inbox.close();
    } finally {
      await t.close();
    }
  });
});
