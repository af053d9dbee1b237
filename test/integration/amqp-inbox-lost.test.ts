/**
 * A responder whose reply inbox the broker deleted while the responder lived (its connection was
 * cut for longer than the inbox's x-expires, or an operator deleted it) answers the clients it
 * held for that inbox at once with `reply_inbox_lost`, logs them, and serves new requests on a
 * fresh inbox. Against the shared RabbitMQ node, through a TCP proxy the test cuts.
 */
import amqp from 'amqplib';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { CLIENT_ERRORS } from '../../shared/error-catalogue.js';
import { AmqpTransport } from '../../shared/transport/amqp/transport.js';
import { managementUrlFor } from '../../shared/transport/amqp/depth.js';
import { startResponder, startSidecar } from '../helpers/components.js';
import { brokerProxy, throughProxy } from '../helpers/broker-proxy.js';
import { responderSettings } from '../helpers/responder-settings.js';
import { request, json } from '../helpers/http.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';
import { brokers, silentLog, uniqueQueue, waitFor } from '../helpers/stack.js';

const amqpUrl = (): string => brokers().amqp;

/** Whether the shared node has this queue (the management API answers 404 once it is gone). */
async function queueExists(queue: string): Promise<boolean> {
  const mgmt = managementUrlFor(amqpUrl(), `http://127.0.0.1:${Number(new URL(amqpUrl()).port) + 3}`);
  const res = await fetch(`${mgmt.base}/api/queues/${encodeURIComponent(mgmt.vhost)}/${encodeURIComponent(queue)}`, {
    headers: { authorization: mgmt.authorization },
  });
  await res.arrayBuffer();
  return res.status === 200;
}

/** Waits until `queue` holds `n` ready messages (a passive declare: at once, unlike the management API's stats). */
async function waitForQueued(queue: string, n: number): Promise<void> {
  const conn = await amqp.connect(amqpUrl());
  conn.on('error', () => undefined);
  try {
    await waitFor(
      async () => {
        const ch = await conn.createChannel();
        ch.on('error', () => undefined);
        const ok = await ch.checkQueue(queue).catch(() => null);
        await ch.close().catch(() => undefined);
        return ok?.messageCount === n;
      },
      10_000,
      `${n} request(s) queued in ${queue}`,
    );
  } finally {
    await conn.close().catch(() => undefined);
  }
}

/** Deletes a queue as an operator would. */
async function deleteQueue(queue: string): Promise<void> {
  const mgmt = managementUrlFor(amqpUrl(), `http://127.0.0.1:${Number(new URL(amqpUrl()).port) + 3}`);
  const res = await fetch(`${mgmt.base}/api/queues/${encodeURIComponent(mgmt.vhost)}/${encodeURIComponent(queue)}`, {
    method: 'DELETE',
    headers: { authorization: mgmt.authorization },
  });
  await res.arrayBuffer();
  expect(res.status).toBe(204);
}

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

/** A responder on `url` (its inbox expiring after `inboxExpiresMs`) holding clients up to 25 s, its log lines kept. */
async function responderOn(url: string, queue: string, inboxExpiresMs: number, queueType: 'quorum' | 'classic' = 'quorum') {
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) });
  const transport = await AmqpTransport.connect(url, log, { queueType, inboxExpiresMs });
  cleanups.push(() => transport.close());
  await waitFor(() => transport.isReady(), 20_000, 'the responder transport to connect');
  const running = await startResponder(responderSettings(queue, { timeoutMs: 25_000, publishTimeoutMs: 5_000 }), transport, new Registry(), log);
  cleanups.push(() => running.responder.drain(500));
  return { base: `http://127.0.0.1:${running.address.port}`, pending: running.responder.pending, lines };
}

/** The reply inboxes of `queue`'s responders on the shared node, as the management API lists them. */
async function inboxesOf(queue: string): Promise<string[]> {
  const mgmt = managementUrlFor(amqpUrl(), `http://127.0.0.1:${Number(new URL(amqpUrl()).port) + 3}`);
  const res = await fetch(`${mgmt.base}/api/queues/${encodeURIComponent(mgmt.vhost)}?columns=name`, { headers: { authorization: mgmt.authorization } });
  const all = (await res.json()) as Array<{ name: string }>;
  return all.map((q) => q.name).filter((name) => name.startsWith(`kueuer.reply.${queue}.`));
}

/** The one inbox of `queue`'s responder. */
async function inboxOf(queue: string): Promise<string> {
  return waitFor(
    async () => {
      const names = await inboxesOf(queue);
      return names.length === 1 ? names[0] : '';
    },
    10_000,
    `one reply inbox of ${queue}`,
  ) as Promise<string>;
}

async function sidecarFor(queue: string, app: TestApp): Promise<void> {
  const transport = await AmqpTransport.connect(amqpUrl(), silentLog);
  cleanups.push(() => transport.close());
  const sidecar = await startSidecar(
    { app: { host: '127.0.0.1', port: app.port }, queue, concurrency: 2, maxResponseBytes: 1024 * 1024 },
    transport,
    new Registry(),
    silentLog,
  );
  cleanups.push(() => sidecar.stop());
}

const LOST_LOG = 'reply inbox lost: its held clients are answered reply_inbox_lost';

/** New requests work, on the fresh inbox, once a sidecar serves the queue. */
async function expectServedLater(base: string, queue: string): Promise<void> {
  const app = await startTestApp();
  cleanups.push(() => app.close());
  await sidecarFor(queue, app);
  const res = await request(base, { path: '/later' });
  expect(res.status, res.body.toString('utf8')).toBe(200);
}

describe('a reply inbox the broker deleted while its responder lived', () => {
  it('answers the held clients at once with reply_inbox_lost when the responder reconnects past x-expires, and serves new requests', async () => {
    const proxy = await brokerProxy(amqpUrl());
    cleanups.push(() => proxy.close());
    const queue = uniqueQueue('inbox-lost');
    const r = await responderOn(throughProxy(amqpUrl(), proxy), queue, 2_000);
    const lostInbox = await inboxOf(queue);
    // No sidecar yet: the client is held, its request queued with the inbox as reply destination.
    const held = request(r.base, { path: '/held' });
    await waitFor(() => r.pending.size === 1, 10_000, 'the client to be held');
    await waitForQueued(queue, 1);
    proxy.cut();
    await waitFor(async () => !(await queueExists(lostInbox)), 30_000, 'the broker to expire the unused inbox', { intervalMs: 250 });
    proxy.restore();
    const restoredAt = Date.now();
    const res = await held;
    const waitedMs = Date.now() - restoredAt;
    expect(res.status).toBe(CLIENT_ERRORS.reply_inbox_lost.status);
    const body = json(res);
    expect(body.error).toBe('reply_inbox_lost');
    expect(body.message).toMatch(/expired after 2000 ms unused \(the connection was cut for longer\), or it was deleted/);
    expect(body.message).toMatch(/may have run/);
    // Promptly: the reconnect (backoff up to 5 s) and the check, far from the 25 s deadline.
    expect(waitedMs).toBeLessThan(10_000);
    const logged = r.lines.find((l) => l.msg === LOST_LOG);
    expect(logged).toMatchObject({ inbox: lostInbox, reqIds: [body.requestId] });
    expect(await inboxOf(queue)).not.toBe(lostInbox);
    await expectServedLater(r.base, queue);
  }, 60_000);

  it('answers the held clients at once when an operator deletes the inbox while it is consumed', async () => {
    const queue = uniqueQueue('inbox-deleted');
    const r = await responderOn(amqpUrl(), queue, 60_000);
    const lostInbox = await inboxOf(queue);
    const held = request(r.base, { path: '/held' });
    await waitFor(() => r.pending.size === 1, 10_000, 'the client to be held');
    const deletedAt = Date.now();
    await deleteQueue(lostInbox);
    const res = await held;
    expect(Date.now() - deletedAt).toBeLessThan(5_000);
    expect(res.status).toBe(504);
    expect(json(res)).toMatchObject({ error: 'reply_inbox_lost' });
    expect(r.lines.find((l) => l.msg === LOST_LOG)).toMatchObject({ inbox: lostInbox });
    await expectServedLater(r.base, queue);
  }, 60_000);

  it('with classic queues, answers the held clients when the connection was away longer than sidecars retry a missing inbox', async () => {
    const proxy = await brokerProxy(amqpUrl());
    cleanups.push(() => proxy.close());
    const queue = uniqueQueue('inbox-lost-classic');
    const r = await responderOn(throughProxy(amqpUrl(), proxy), queue, 60_000, 'classic');
    const lostInbox = await inboxOf(queue);
    const held = request(r.base, { path: '/held' });
    await waitFor(() => r.pending.size === 1, 10_000, 'the client to be held');
    await waitForQueued(queue, 1);
    proxy.cut();
    // The exclusive inbox goes with the connection; past 5 s a sidecar would have dropped a reply to it.
    await new Promise((resolve) => setTimeout(resolve, 6_000));
    proxy.restore();
    const res = await held;
    expect(res.status).toBe(504);
    expect(json(res).message).toMatch(/a classic inbox is deleted with its connection/);
    expect(r.lines.find((l) => l.msg === LOST_LOG)).toMatchObject({ inbox: lostInbox });
    await expectServedLater(r.base, queue);
  }, 60_000);
});
