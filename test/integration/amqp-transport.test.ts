/** The AMQP transport's own duties against the real broker. */
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { encodeRequest, encodeResponse } from '../../shared/envelope.js';
import { isKueuerError } from '../../shared/errors.js';
import { brokers, newTransport, uniqueQueue } from '../helpers/stack.js';

/** A TCP proxy to the shared node whose client side can stop being read (`stall`), as a blocked broker does. */
async function stallingProxy(): Promise<{ url: string; stall: () => void; clients: net.Socket[]; proxy: net.Server }> {
  const broker = new URL(brokers().amqp);
  const clients: net.Socket[] = [];
  const proxy = net.createServer((client) => {
    clients.push(client);
    const upstream = net.connect(Number(broker.port), broker.hostname);
    client.pipe(upstream).pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const port = (proxy.address() as net.AddressInfo).port;
  const stall = (): void => {
    for (const client of clients) {
      client.unpipe();
      client.pause();
    }
  };
  return { url: `amqp://${broker.username}:${broker.password}@127.0.0.1:${port}${broker.pathname}`, stall, clients, proxy };
}

describe('amqp transport', () => {
  it('a reply whose inbox does not exist fails as KUEUER_ERR_REPLY_INBOX_GONE (the sidecar retries briefly, then drops it without rerunning the app)', async () => {
    const t = await newTransport('amqp');
    try {
      const queue = uniqueQueue('noinbox');
      const reply = encodeResponse({ id: 'c'.repeat(32), queue, status: 200, headers: [], body: Buffer.from('x') });
      const err = await t.publishReply(`kueuer.reply.${queue}.0000000000000000`, reply, { timeoutMs: 5000 }).catch((e: unknown) => e);
      expect(isKueuerError(err, 'KUEUER_ERR_REPLY_INBOX_GONE')).toBe(true);
      expect((err as Error).message).toMatch(/does not exist/);
      // An inbox that exists takes it.
      const got: string[] = [];
      const inbox = await t.openReplyInbox(queue, (m) => got.push(m.body.toString()));
      await t.publishReply(inbox.address, reply, { timeoutMs: 5000 });
      await expect.poll(() => got, { timeout: 5000 }).toEqual(['x']);
      await inbox.close();
    } finally {
      await t.close();
    }
  });

  it('does not buffer requests without bound when the broker stops reading (a memory or disk alarm, a stalled network)', async () => {
    const { url, stall, clients, proxy } = await stallingProxy();
    const t = await newTransport('amqp', url);
    try {
      const queue = uniqueQueue('stalled');
      const body = Buffer.alloc(16 * 1024, 'x');
      const request = (n: number) =>
        encodeRequest({
          id: n.toString(16).padStart(32, '0'),
          queue,
          replyTo: `kueuer.reply.${queue}.0000000000000000`,
          deadline: Date.now() + 60_000,
          enqueuedAt: Date.now(),
          method: 'POST',
          path: '/',
          headers: [],
          body,
        });
      await t.publishRequest(queue, request(1), { timeoutMs: 5000 }); // declared while the broker reads
      stall();
      // 3,000 × 16 KiB: far more than the kernel's socket buffers take; before, every one was kept in memory.
      const results = await Promise.all(
        Array.from({ length: 3000 }, (_, i) =>
          t.publishRequest(queue, request(i + 2), { timeoutMs: 3000 }).then(
            () => null,
            (e: unknown) => e as Error,
          ),
        ),
      );
      const refused = results.filter((e) => e !== null && /not reading/.test(e.message));
      expect(refused.length).toBeGreaterThan(1000);
      expect(refused.every((e) => isKueuerError(e, 'KUEUER_ERR_PUBLISH_TIMEOUT'))).toBe(true);
    } finally {
      for (const client of clients) client.destroy();
      proxy.close();
      await t.close();
    }
  }, 60_000);

  it('closes within a bounded time when the broker stops answering (a stalled shutdown would hang until SIGKILL)', async () => {
    const { url, stall, clients, proxy } = await stallingProxy();
    const t = await newTransport('amqp', url);
    try {
      await t.openReplyInbox(uniqueQueue('closing'), () => undefined);
      stall();
      const started = Date.now();
      await Promise.race([t.close(), new Promise((resolve) => setTimeout(resolve, 20_000))]);
      expect(Date.now() - started).toBeLessThan(15_000);
    } finally {
      for (const client of clients) client.destroy();
      proxy.close();
    }
  }, 60_000);
});
