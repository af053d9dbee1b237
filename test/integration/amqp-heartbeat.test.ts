/**
 * The AMQP heartbeat against the shared node: 20 s negotiated by default
 * (amqplib alone takes RabbitMQ's 60 s), and a broker that goes silent
 * without closing the TCP connection (a partition, a blackholed address) is
 * noticed by the heartbeat and the transport reconnects. Through a TCP proxy
 * that the test makes swallow everything.
 */
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { AmqpTransport } from '../../shared/transport/amqp/transport.js';
import { DEFAULT_HEARTBEAT_S } from '../../shared/transport/amqp/url.js';
import { brokerProxy, throughProxy } from '../helpers/broker-proxy.js';
import { brokers, waitFor } from '../helpers/stack.js';

async function connect(url: string): Promise<{ t: AmqpTransport; lines: Array<Record<string, unknown>> }> {
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) });
  const t = await AmqpTransport.connect(url, log);
  await waitFor(() => t.isReady(), 20_000, 'the transport to connect');
  return { t, lines };
}

const negotiated = (t: AmqpTransport): number => (t.currentModel() as unknown as { connection: { heartbeat: number } }).connection.heartbeat;

describe('amqp heartbeat', () => {
  it(`is negotiated at ${DEFAULT_HEARTBEAT_S} s by default, and as the URL says when it says`, async () => {
    const { t } = await connect(brokers().amqp);
    const { t: set } = await connect(`${brokers().amqp}?heartbeat=7`);
    try {
      expect(negotiated(t)).toBe(DEFAULT_HEARTBEAT_S);
      expect(negotiated(set)).toBe(7);
    } finally {
      await t.close();
      await set.close();
    }
  });

  it('notices a broker gone silent without closing the connection within two to three heartbeats', async () => {
    const proxy = await brokerProxy(brokers().amqp);
    const { t, lines } = await connect(`${throughProxy(brokers().amqp, proxy)}?heartbeat=2`);
    try {
      const silencedAt = Date.now();
      proxy.silence();
      await waitFor(() => lines.some((l) => l.msg === 'lost broker connection; reconnecting'), 10_000, 'the heartbeat to notice the silence');
      const noticedMs = Date.now() - silencedAt;
      // amqplib gives up after two missed checks, one per interval: 2-3 intervals (4-6 s), less than 4 with a late timer.
      expect(noticedMs).toBeGreaterThanOrEqual(3_000);
      expect(noticedMs).toBeLessThan(8_000);
      expect(lines.find((l) => l.msg === 'lost broker connection; reconnecting')?.err).toMatch(/[Hh]eartbeat/);
    } finally {
      await t.close();
      await proxy.close();
    }
  });
});
