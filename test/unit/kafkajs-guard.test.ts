/**
 * kafkajs 2.2.4's request queue on Node 24 (issue 22, item 10): loading Kueuer's Kafka client
 * guards it, so no timer is ever set with a negative delay (Node 24's TimeoutNegativeWarning)
 * and an idle queue does not poll itself every millisecond.
 */
import { createRequire } from 'node:module';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { kafkajsGuard } from '../../shared/transport/kafka/client.js';
import { GUARDED_KAFKAJS_VERSION, scheduleCheckPendingRequests } from '../../shared/transport/kafka/kafkajs-guard.js';

const require = createRequire(import.meta.url);
type Queue = { pending: unknown[]; throttledUntil: number; throttleCheckTimeoutId: unknown; scheduleCheckPendingRequests(): void; destroy(): void };
const RequestQueue = require('kafkajs/src/network/requestQueue/index.js') as new (o: Record<string, unknown>) => Queue;
const logger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
const newQueue = (): Queue =>
  new RequestQueue({ maxInFlightRequests: null, requestTimeout: 30_000, enforceRequestTimeout: false, clientId: 't', broker: 'b:9092', logger });

describe('the kafkajs guard', () => {
  afterEach(() => vi.restoreAllMocks());

  it('is applied to the installed kafkajs (a new version needs the guard reviewed again)', () => {
    expect((require('kafkajs/package.json') as { version: string }).version).toBe(GUARDED_KAFKAJS_VERSION);
    expect(kafkajsGuard).toBe('guarded');
    expect((RequestQueue.prototype as Queue).scheduleCheckPendingRequests).toBe(scheduleCheckPendingRequests);
  });

  it('sets no timer when nothing is pending and nothing throttles (kafkajs set one of about -Date.now() ms)', () => {
    const timers = vi.spyOn(globalThis, 'setTimeout');
    const q = newQueue();
    expect(q.throttledUntil).toBe(-1);
    q.scheduleCheckPendingRequests();
    expect(timers.mock.calls.map((c) => c[1])).toEqual([]);
    q.destroy();
  });

  it('still checks pending requests: at the end of a throttle, or after 10 ms', () => {
    const timers = vi.spyOn(globalThis, 'setTimeout');
    const q = newQueue();
    q.pending.push({});
    q.scheduleCheckPendingRequests();
    q.destroy();
    q.throttledUntil = Date.now() + 5_000;
    q.scheduleCheckPendingRequests();
    q.destroy();
    q.pending.length = 0;
    q.scheduleCheckPendingRequests(); // throttled, nothing pending: a look when the throttle ends, as kafkajs does
    q.destroy();
    const delays = timers.mock.calls.map((c) => c[1] as number);
    expect(delays[0]).toBe(10);
    expect(delays[1]).toBeGreaterThan(4_900);
    expect(delays[1]).toBeLessThanOrEqual(5_000);
    expect(delays[2]).toBeGreaterThan(4_900);
    expect(delays.every((d) => d > 0)).toBe(true);
  });
});
