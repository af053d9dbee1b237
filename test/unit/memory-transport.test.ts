import { describe, expect, it } from 'vitest';
import type { WireMessage } from '../../shared/envelope.js';
import { memoryTestSeam, MemoryTransport } from '../../shared/transport/memory.js';
import type { Delivery } from '../../shared/transport/transport.js';
import { delay } from '../helpers/test-app.js';
import { waitFor } from '../helpers/stack.js';

const msg = (n: number): WireMessage => ({ meta: { n: String(n) }, body: Buffer.from([n]) });

describe('memory transport', () => {
  it('brings back a delivery whose consumer died without acking, after the visibility timeout', async () => {
    const t = new MemoryTransport({ visibilityTimeoutMs: 150 });
    const first: Delivery[] = [];
    const dying = await t.consume('q', { concurrency: 1 }, (d) => {
      first.push(d);
      return new Promise(() => undefined); // never finishes: the process "hangs" then dies
    });
    await t.publishRequest('q', msg(1));
    await waitFor(() => first.length === 1, 1000, 'first delivery');
    memoryTestSeam.crash(dying);

    const second: Delivery[] = [];
    await t.consume('q', { concurrency: 1 }, async (d) => {
      second.push(d);
    });
    await delay(60);
    expect(second).toHaveLength(0); // still invisible within the timeout
    await waitFor(() => second.length === 1, 1000, 'redelivery');
    expect(second[0]!.redelivered).toBe(true);
    expect(second[0]!.message.meta.n).toBe('1');
    expect(first[0]!.redelivered).toBe(false);
    await t.close();
  });

  it('keeps a slow delivery invisible while its handler runs (heartbeat)', async () => {
    const t = new MemoryTransport({ visibilityTimeoutMs: 60 });
    let deliveries = 0;
    await t.consume('q', { concurrency: 2 }, async () => {
      deliveries++;
      await delay(400); // far longer than the visibility timeout
    });
    await t.publishRequest('q', msg(1));
    await delay(600);
    expect(deliveries).toBe(1);
    expect(memoryTestSeam.depth(t, 'q')).toBe(0);
    await t.close();
  });

  it('requeues a delivery whose handler fails, marked redelivered', async () => {
    const t = new MemoryTransport({ visibilityTimeoutMs: 5000 });
    const seen: boolean[] = [];
    await t.consume('q', { concurrency: 1 }, async (d) => {
      seen.push(d.redelivered);
      if (seen.length === 1) throw new Error('reply could not be published');
    });
    await t.publishRequest('q', msg(1));
    await waitFor(() => seen.length === 2, 1000, 'second attempt');
    expect(seen).toEqual([false, true]);
    await t.close();
  });

  it('never runs more handlers than the concurrency, and stop() waits for them', async () => {
    const t = new MemoryTransport({ visibilityTimeoutMs: 5000 });
    let running = 0;
    let peak = 0;
    let done = 0;
    const consumer = await t.consume('q', { concurrency: 3 }, async () => {
      running++;
      peak = Math.max(peak, running);
      await delay(20);
      running--;
      done++;
    });
    for (let i = 0; i < 20; i++) await t.publishRequest('q', msg(i));
    await waitFor(() => done === 20, 2000, 'all handled');
    expect(peak).toBe(3);

    await t.publishRequest('q', msg(99));
    await waitFor(() => consumer.inFlight === 1, 1000, 'one in flight');
    await consumer.stop();
    expect(done).toBe(21);
    await t.publishRequest('q', msg(100));
    await delay(50);
    expect(done).toBe(21); // a stopped consumer takes nothing new
    expect(memoryTestSeam.depth(t, 'q')).toBe(1);
    await t.close();
  });

  it('delivers replies only to the inbox they are addressed to', async () => {
    const t = new MemoryTransport({ visibilityTimeoutMs: 5000 });
    const a: WireMessage[] = [];
    const b: WireMessage[] = [];
    const inboxA = await t.openReplyInbox('q', (m) => a.push(m));
    await t.openReplyInbox('q', (m) => b.push(m));
    await t.publishReply(inboxA.address, msg(1));
    await waitFor(() => a.length === 1, 1000, 'reply');
    await delay(10);
    expect(b).toHaveLength(0);
    await t.close();
    await expect(t.publishRequest('q', msg(2))).rejects.toMatchObject({ code: 'KUEUER_ERR_TRANSPORT_CLOSED' });
  });
});
