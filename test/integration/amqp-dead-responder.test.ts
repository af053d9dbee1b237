/**
 * Issue 21, point 2: "a responder that really died still gets the fast 'nowhere to go' handling".
 * With quorum reply inboxes (the default) a responder that is SIGKILLed leaves its inbox behind
 * until x-expires (60 s unused): the sidecar that answers one of its requests meanwhile publishes
 * the reply into that inbox, where the broker confirms it at once; the sidecar acks the request
 * without retrying the reply and without running the app again, and the reply goes with the inbox
 * when it expires. Against the shared RabbitMQ node, a real responder process and an in-process
 * sidecar.
 */
import amqp from 'amqplib';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { AmqpTransport } from '../../shared/transport/amqp/transport.js';
import { managementUrlFor } from '../../shared/transport/amqp/depth.js';
import { REPLY_INBOX_EXPIRES_MS } from '../../shared/transport/amqp/queues.js';
import { startSidecar } from '../helpers/components.js';
import { request } from '../helpers/http.js';
import { msgIs, spawnKueuer } from '../helpers/processes.js';
import { startTestApp } from '../helpers/test-app.js';
import { brokers, uniqueQueue, waitFor } from '../helpers/stack.js';

const amqpUrl = (): string => brokers().amqp;

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

/** Ready messages in `queue` (a passive declare, exact at once), or null when the queue does not exist. */
async function queued(queue: string): Promise<number | null> {
  const conn = await amqp.connect(amqpUrl());
  conn.on('error', () => undefined);
  try {
    const ch = await conn.createChannel();
    ch.on('error', () => undefined);
    return (await ch.checkQueue(queue).catch(() => null))?.messageCount ?? null;
  } finally {
    await conn.close().catch(() => undefined);
  }
}

/** The reply inbox of `queue`'s one responder, as the management API lists it. */
async function inboxOf(queue: string): Promise<string> {
  const mgmt = managementUrlFor(amqpUrl(), `http://127.0.0.1:${Number(new URL(amqpUrl()).port) + 3}`);
  let found = '';
  await waitFor(
    async () => {
      const res = await fetch(`${mgmt.base}/api/queues/${encodeURIComponent(mgmt.vhost)}?columns=name`, { headers: { authorization: mgmt.authorization } });
      const names = ((await res.json()) as Array<{ name: string }>).map((q) => q.name).filter((n) => n.startsWith(`kueuer.reply.${queue}.`));
      found = names.length === 1 ? names[0]! : '';
      return found !== '';
    },
    10_000,
    `the reply inbox of ${queue}`,
  );
  return found;
}

describe('a responder that was SIGKILLed, with quorum reply inboxes', () => {
  it("costs the sidecar nothing: the reply is confirmed into the dead responder's inbox at once, the request acked, the app run once, no retry", async () => {
    const queue = uniqueQueue('dead-responder');
    const responder = spawnKueuer(['responder', '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--backend', amqpUrl(), '--queue', queue]);
    cleanups.push(async () => responder.child.kill('SIGKILL'));
    const ready = await responder.waitForLog(msgIs('responder ready'), 30_000);
    const inbox = await inboxOf(queue);
    // No sidecar yet: the client is held and its request waits in the queue, naming the inbox.
    const held = request(`http://${ready.listen as string}`, { path: '/held' }).catch((err: Error) => err);
    await waitFor(async () => (await queued(queue)) === 1, 10_000, 'the request to be queued');
    responder.child.kill('SIGKILL');
    expect(await held).toBeInstanceOf(Error); // its client was cut with it, unavoidably
    await responder.exited;

    let calls = 0;
    let answeredAt = 0;
    const app = await startTestApp();
    cleanups.push(() => app.close());
    app.handle((_req, res) => {
      calls++;
      res.end('answer');
      answeredAt = Date.now();
    });
    const lines: Array<Record<string, unknown>> = [];
    const log = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) });
    const transport = await AmqpTransport.connect(amqpUrl(), log);
    cleanups.push(() => transport.close());
    const registry = new Registry();
    const sidecar = await startSidecar(
      { app: { host: '127.0.0.1', port: app.port }, queue, concurrency: 1, maxResponseBytes: 1024 * 1024 },
      transport,
      registry,
      log,
    );
    // The reply lands in the dead responder's inbox, which is still there (x-expires 60 s unused).
    await waitFor(async () => (await queued(inbox)) === 1, 10_000, "the reply in the dead responder's inbox", { intervalMs: 20 });
    const tookMs = Date.now() - answeredAt;
    await sidecar.stop(); // waits for the handler: an unacked request would go back to the queue now
    expect(await queued(queue)).toBe(0);
    expect(calls).toBe(1);
    // At once (the classic exclusive inbox, deleted with the connection, cost up to 5 s of retries).
    expect(tookMs).toBeLessThan(2_000);
    expect(lines.filter((l) => Number(l.level) >= 40).map((l) => l.msg)).toEqual([]);
    console.log(
      `dead responder: reply confirmed into its inbox ${tookMs} ms after the app answered; app calls ${calls}; inbox x-expires ${REPLY_INBOX_EXPIRES_MS} ms`,
    );
  }, 60_000);
});
