/** The set of cancelled ids a sidecar holds (cancelled-ids.ts): bounded, and cheap per cancel when full. */
import { describe, expect, it } from 'vitest';
import { CancelledIds } from '../../shared/transport/cancelled-ids.js';
import { newRequestId } from '../../shared/request-id.js';

describe('a full set of cancelled ids', () => {
  it('takes each further cancel without scanning the whole set (a flood read back at start is linear)', () => {
    // A topic read back at start can hold more cancels than the set (16 MiB of ~100-byte records):
    // each past the capacity evicts the oldest. Scanning the whole set for expired ids on every one
    // of them made the read quadratic, and it runs on the sidecar's event loop.
    const capacity = 20_000;
    const set = new CancelledIds(capacity, () => 1_000_000);
    const ids = Array.from({ length: 3 * capacity }, () => newRequestId());
    const started = performance.now();
    for (const id of ids) set.add(id, 1_000_000 + 60_000);
    const tookMs = performance.now() - started;
    expect(set.size).toBe(capacity);
    expect(set.evicted).toBe(2 * capacity);
    expect(set.has(ids.at(-1)!)).toBe(true);
    expect(set.has(ids[0]!)).toBe(false);
    console.log(`${ids.length} cancels into a set of ${capacity}: ${tookMs.toFixed(0)} ms`);
    expect(tookMs).toBeLessThan(400); // 17,700 ms when each add to the full set scanned it
  });

  it('still drops expired ids before evicting live ones', () => {
    let now = 1_000_000;
    const set = new CancelledIds(4, () => now);
    const [a, b, c, d, e, f] = Array.from({ length: 6 }, () => newRequestId());
    set.add(a!, now + 100); // expires first
    set.add(b!, now + 10_000);
    set.add(c!, now + 10_000);
    set.add(d!, now + 10_000);
    now += 200;
    set.add(e!, now + 10_000); // a has expired: it goes, not b
    expect(set.evicted).toBe(0);
    expect([b, c, d, e].every((id) => set.has(id!))).toBe(true);
    set.add(f!, now + 10_000); // none expired: the oldest (b) is evicted
    expect(set.evicted).toBe(1);
    expect(set.has(b!)).toBe(false);
    expect(set.has(f!)).toBe(true);
  });
});

describe('the set of cancelled ids, under random cancels, lookups, sweeps and time', () => {
  it('evicts in the order of the cancels, and never holds an id past its deadline', () => {
    let seed = 7;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    let now = 1_000_000;
    const capacity = 50;
    const set = new CancelledIds(capacity, () => now);
    const accepted: Array<{ id: string; deadline: number }> = [];
    for (let step = 0; step < 20_000; step++) {
      const r = random();
      if (r < 0.6) {
        const id = newRequestId();
        const deadline = now + Math.floor(random() * 5_000);
        if (set.add(id, deadline)) accepted.push({ id, deadline });
      } else if (r < 0.9) {
        const pick = accepted[Math.floor(random() * accepted.length)];
        if (pick && set.has(pick.id)) expect(pick.deadline).toBeGreaterThan(now);
      } else if (r < 0.92) set.sweep();
      else if (r < 0.97) now += Math.floor(random() * 300);
      else {
        // Of the cancels still within their deadline, the set holds the newest: once one is missing
        // (evicted), no older one is held.
        let missing = false;
        for (const { id, deadline } of accepted.slice(-3 * capacity).reverse()) {
          if (deadline <= now) continue;
          const held = set.has(id);
          if (missing) expect(held, `${id} held while a newer cancel was evicted`).toBe(false);
          missing ||= !held;
        }
      }
      expect(set.size).toBeLessThanOrEqual(capacity);
    }
    expect(set.evicted).toBeGreaterThan(100);
  });

  it('holds nothing with a capacity of 0 and does not loop', () => {
    const set = new CancelledIds(0, () => 0);
    expect(set.add(newRequestId(), 1_000)).toBe(true);
    expect(set.add(newRequestId(), 1_000)).toBe(true);
    expect(set.size).toBeLessThanOrEqual(1);
  });
});
