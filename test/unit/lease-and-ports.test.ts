/** The pure parts of leader election (shared/kube/lease.ts) and of responder port reservations (webhook/admission/port-allocations.ts). */
import { describe, expect, it } from 'vitest';
import { leaseAction } from '../../shared/kube/lease.js';
import { heldPorts, parseReservations, RESERVATION_GRACE_MS } from '../../webhook/admission/port-allocations.js';

const record = (holder: string, version = `${holder}|t1|0`) => ({ holder, version });

describe('leaseAction', () => {
  it('creates a missing Lease, renews its own, takes an empty one', () => {
    expect(leaseAction(null, 'a', null, 0, 15_000)).toBe('create');
    expect(leaseAction(record('a'), 'a', null, 0, 15_000)).toBe('renew');
    expect(leaseAction(record(''), 'a', null, 0, 15_000)).toBe('acquire');
  });

  it("waits while another holder's record keeps changing, or has not been seen unchanged for a whole lease duration", () => {
    const seen = { version: 'b|t1|0', atMs: 1000 };
    expect(leaseAction(record('b'), 'a', seen, 1000 + 14_999, 15_000)).toBe('wait');
    expect(leaseAction(record('b', 'b|t2|0'), 'a', seen, 1000 + 20_000, 15_000)).toBe('wait'); // renewed since: alive
    expect(leaseAction(record('b'), 'a', null, 1000 + 20_000, 15_000)).toBe('wait'); // never observed before
  });

  it('takes over a record unchanged for the lease duration, measured on its own clock', () => {
    expect(leaseAction(record('b'), 'a', { version: 'b|t1|0', atMs: 1000 }, 1000 + 15_000, 15_000)).toBe('acquire');
  });

  it("judges expiry on the holder's declared duration when the record carries one", () => {
    const seen = { version: 'b|t1|0', atMs: 1000 };
    const longer = { ...record('b'), durationMs: 40_000 };
    expect(leaseAction(longer, 'a', seen, 1000 + 39_999, 15_000)).toBe('wait');
    expect(leaseAction(longer, 'a', seen, 1000 + 40_000, 15_000)).toBe('acquire');
    expect(leaseAction({ ...record('b'), durationMs: 4_000 }, 'a', seen, 1000 + 4_000, 15_000)).toBe('acquire');
  });
});

describe('responder port reservations', () => {
  const reservations = parseReservations({ '20001': 'shop/a at 1000', '20002': 'shop/b at 1000', junk: 'x', '20003': 'not a reservation' });

  it('parses "namespace/name at epoch-ms" by port and ignores anything else', () => {
    expect([...reservations.entries()]).toEqual([
      [20001, { service: 'shop/a', atMs: 1000 }],
      [20002, { service: 'shop/b', atMs: 1000 }],
    ]);
  });

  it('holds within the grace period, or while the Service carries the port, and never against the Service itself', () => {
    const none = () => false;
    expect(heldPorts(reservations, none, 'shop/x', 1000 + RESERVATION_GRACE_MS - 1)).toEqual(new Set([20001, 20002]));
    expect(heldPorts(reservations, none, 'shop/x', 1000 + RESERVATION_GRACE_MS)).toEqual(new Set());
    const carries = (service: string, port: number) => service === 'shop/b' && port === 20002;
    expect(heldPorts(reservations, carries, 'shop/x', 1000 + RESERVATION_GRACE_MS)).toEqual(new Set([20002]));
    expect(heldPorts(reservations, none, 'shop/a', 1000)).toEqual(new Set([20002]));
  });
});
