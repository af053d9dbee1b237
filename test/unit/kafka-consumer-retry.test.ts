/**
 * How soon a kafkajs consumer fetches again once a dead partition leader's successor exists: its
 * fetch loop is kafkajs's own retrier (kafkajs/src/retry), run here on fake timers with the
 * options Kueuer's consumers get (CONSUMER_RETRY) and with those they had before (the client's).
 */
import { createRequire } from 'node:module';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { CONSUMER_RETRY } from '../../shared/transport/kafka/client.js';

type Retrier = (fn: () => Promise<void>) => Promise<void>;
const createRetry = createRequire(import.meta.url)('kafkajs/src/retry') as (options: object) => Retrier;

/** The client's retry before: doubling from 100 ms up to kafkajs's 30 s cap, 8 retries. */
const CLIENT_DEFAULT = { initialRetryTime: 100, retries: 8, maxRetryTime: 30_000, factor: 0.2, multiplier: 2 };

/** When (ms) the first fetch at or after `electedMs` happens, fetches before it failing; null when kafkajs gave up first. */
async function firstFetchAfter(options: object, electedMs: number): Promise<number | null> {
  const start = Date.now();
  let at: number | null = null;
  const done = createRetry(options)(async () => {
    const now = Date.now() - start;
    if (now < electedMs) throw Object.assign(new Error('Connection error: connect ECONNREFUSED'), { retriable: true });
    at = now;
  }).catch(() => undefined);
  await vi.advanceTimersByTimeAsync(120_000);
  await done;
  return at;
}

describe("Kafka consumers' fetch retry", () => {
  afterEach(() => {
    vi.useRealTimers();
    vi.restoreAllMocks();
  });

  it.each([1_000, 8_000, 9_000, 12_500, 20_000])(
    'fetches within a second of new leaders elected %i ms after the failure (it waited seconds more before)',
    async (electedMs) => {
      vi.useFakeTimers();
      for (let run = 0; run < 20; run++) {
        const at = await firstFetchAfter(CONSUMER_RETRY, electedMs);
        expect(at).not.toBeNull();
        expect(at! - electedMs).toBeLessThanOrEqual(1000);
      }
    },
  );

  it('the client default, unjittered, fetched 3.7 s after an election 9 s after the failure (attempts at 6.3 s, then 12.7 s)', async () => {
    vi.useFakeTimers();
    vi.spyOn(Math, 'random').mockReturnValue(0.5);
    expect(await firstFetchAfter(CLIENT_DEFAULT, 9_000)).toBe(12_700);
    expect(await firstFetchAfter(CONSUMER_RETRY, 9_000)).toBe(9_500);
  });

  it('keeps retrying through an outage of 25 s (the default gave up, and kafkajs restarted the consumer, after about as long)', async () => {
    vi.useFakeTimers();
    expect(await firstFetchAfter(CONSUMER_RETRY, 25_000)).not.toBeNull();
  });
});
