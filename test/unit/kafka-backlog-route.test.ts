/** Where a new Kafka request goes: the partition with the least backlog (backlog-route.ts, issue 25). */
import { AssignerProtocol } from 'kafkajs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { BacklogRoute, leastBacklog, partitionLags, partitionOwners, type BacklogTable } from '../../shared/transport/kafka/backlog-route.js';
import { byKey } from '../../shared/transport/kafka/leaders.js';
import { silentLog } from '../helpers/stack.js';

const lags = (...values: number[]) => new Map(values.map((v, p) => [p, v] as const));
const none = new Map<number, number>();

describe('the least backlogged partition', () => {
  it('is the candidate with the fewest records waiting or running', () => {
    expect(leastBacklog([0, 1, 2, 3], { lag: lags(3, 1, 0, 2) }, none)).toBe(2);
  });

  it("counts this responder's placements since the read on top of the table, so a burst spreads", () => {
    const table: BacklogTable = { lag: lags(1, 0, 0, 0) };
    const own = new Map<number, number>();
    const chosen: number[] = [];
    for (let i = 0; i < 6; i++) {
      const p = leastBacklog([0, 1, 2, 3], table, own)!;
      own.set(p, (own.get(p) ?? 0) + 1);
      chosen.push(p);
    }
    // Three to the idle partitions, one each; then one each to all four (the busy one's backlog is 1, as theirs).
    expect(chosen.slice(0, 3).sort()).toEqual([1, 2, 3]);
    expect(chosen.slice(3).filter((p) => p === 0).length).toBeLessThanOrEqual(1);
    expect([...own.values()].reduce((a, b) => a + b)).toBe(6);
    expect(Math.max(...own.values()) - Math.min(...[0, 1, 2, 3].map((p) => (own.get(p) ?? 0) + (table.lag.get(p) ?? 0)))).toBeLessThanOrEqual(1);
  });

  it('breaks ties at random', () => {
    const table = { lag: lags(0, 2, 0, 0) };
    expect(leastBacklog([0, 1, 2, 3], table, none, () => 0)).toBe(0);
    expect(leastBacklog([0, 1, 2, 3], table, none, () => 0.5)).toBe(2);
    expect(leastBacklog([0, 1, 2, 3], table, none, () => 0.99)).toBe(3);
  });

  it('chooses only among the candidates (reachable leader, no failed send)', () => {
    expect(leastBacklog([0, 1, 3], { lag: lags(3, 1, 0, 2) }, none)).toBe(1);
  });

  it("prefers the partitions of the member with the least backlog over all of its partitions, when the group's owners are known", () => {
    // Member a runs a request from partition 0; its partition 1 is empty but would wait behind it.
    const owners = new Map([
      [0, 'a'],
      [1, 'a'],
      [2, 'b'],
      [3, 'b'],
    ]);
    const table = { lag: lags(1, 0, 0, 0), owners };
    for (const r of [0, 0.5, 0.99]) expect([2, 3]).toContain(leastBacklog([0, 1, 2, 3], table, none, () => r));
    // Among b's, the least backlogged.
    expect(leastBacklog([0, 1, 2, 3], { lag: lags(2, 0, 1, 0), owners }, none)).toBe(3);
    // The owner's backlog counts placements too.
    expect(leastBacklog([0, 1, 2, 3], table, new Map([[2, 2]]))).toBe(1);
  });

  it('is never a partition no member reads (added since the rebalance) while some member reads one', () => {
    const owners = new Map([
      [0, 'a'],
      [1, 'b'],
    ]);
    const table = { lag: lags(3, 2, 0, 0), owners };
    for (const r of [0, 0.5, 0.99]) expect(leastBacklog([0, 1, 2, 3], table, none, () => r)).toBe(1);
    // None of the candidates read: the least backlogged of them still.
    expect(leastBacklog([2, 3], table, new Map([[2, 1]]))).toBe(3);
  });

  it('is among the candidates the table knows (one added since the read is not), unknown when it knows none (the caller then goes by the key)', () => {
    for (const r of [0, 0.5, 0.99]) expect([0, 1, 2]).toContain(leastBacklog([0, 1, 2, 3], { lag: lags(0, 0, 0) }, none, () => r));
    expect(leastBacklog([3, 4], { lag: lags(0, 0, 0) }, none)).toBeUndefined();
    expect(leastBacklog([], { lag: lags(0) }, none)).toBeUndefined();
  });
});

describe('reading the backlog table', () => {
  it('counts latest minus committed per partition, from the earliest offset where the group committed nothing', () => {
    const latest = [
      { partition: 0, offset: '10', low: '0' },
      { partition: 1, offset: '7', low: '2' },
      { partition: 2, offset: '5', low: '5' },
    ];
    expect(
      partitionLags(latest, [
        { partition: 0, offset: '8' },
        { partition: 1, offset: '-1' },
      ]),
    ).toEqual(lags(2, 5, 0));
  });

  it('knows owners only for a stable group in which every partition has exactly one', () => {
    const members: Array<{ memberId: string; assignment: Record<string, number[]> }> = [
      { memberId: 'a', assignment: { t: [0, 1] } },
      { memberId: 'b', assignment: { t: [2], other: [0] } },
    ];
    expect(partitionOwners('Stable', members, 't', [0, 1, 2])).toEqual(
      new Map([
        [0, 'a'],
        [1, 'a'],
        [2, 'b'],
      ]),
    );
    expect(partitionOwners('PreparingRebalance', members, 't', [0, 1, 2])).toBeUndefined();
    // A partition added since the last rebalance has no owner: missing, the others still known.
    expect(partitionOwners('Stable', members, 't', [0, 1, 2, 3])).toEqual(partitionOwners('Stable', members, 't', [0, 1, 2]));
    expect(partitionOwners('Stable', members, 't', [3, 4])).toBeUndefined();
    expect(partitionOwners('Stable', [...members, { memberId: 'c', assignment: { t: [1] } }], 't', [0, 1, 2])).toBeUndefined();
    expect(partitionOwners('Empty', [], 't', [0])).toBeUndefined();
  });
});

describe('the route a responder publishes through', () => {
  afterEach(() => vi.useRealTimers());

  /** An admin answering with `lag` per partition (high = lag, nothing committed), a stable group of one member per partition. */
  function fakeAdmin(lag: () => number[] | Promise<never>) {
    const calls = { offsets: 0 };
    const admin = {
      fetchTopicOffsets: async (_topic: string) => {
        calls.offsets++;
        const values = await lag();
        return values.map((v, partition) => ({ partition, offset: String(v), high: String(v), low: '0' }));
      },
      fetchOffsets: async () => [{ topic: 't', partitions: [] }],
      describeGroups: async () => ({
        groups: [
          {
            state: 'Stable',
            members: [0, 1, 2, 3].map((p) => ({
              memberId: `m${p}`,
              memberAssignment: AssignerProtocol.MemberAssignment.encode({ version: 0, assignment: { t: [p] }, userData: Buffer.alloc(0) }),
            })),
          },
        ],
      }),
    };
    return { admin: admin as unknown as ConstructorParameters<typeof BacklogRoute>[0], calls };
  }
  const leaders = {
    candidates: async (_t: string, failed?: ReadonlySet<number>) => [0, 1, 2, 3].filter((p) => !failed?.has(p)),
    refresh: async () => undefined,
  };

  it('goes by the key until the backlog is read, then to the least backlogged partitions, counting its own placements', async () => {
    vi.useFakeTimers();
    const { admin } = fakeAdmin(() => [5, 0, 0, 0]);
    const route = new BacklogRoute(admin, leaders, silentLog);
    route.watch('t', 'g');
    expect(await route.partitionFor('t', 'req-a', new Set())).toBe(byKey([0, 1, 2, 3], 'req-a'));
    await vi.advanceTimersByTimeAsync(600);
    const burst = await Promise.all(Array.from({ length: 6 }, (_, i) => route.partitionFor('t', `req-${i}`, new Set())));
    expect(burst.filter((p) => p === 0)).toEqual([]);
    expect([1, 2, 3].map((p) => burst.filter((b) => b === p).length)).toEqual([2, 2, 2]);
    // A failed send's partition is not a candidate.
    expect(await route.partitionFor('t', 'req-x', new Set([1, 2, 3]))).toBe(0);
    route.close();
  });

  it('goes by the key again when a read fails or does not answer in time, and once the table is stale', async () => {
    vi.useFakeTimers();
    let answer: () => number[] | Promise<never> = () => [5, 0, 0, 0];
    const { admin } = fakeAdmin(() => answer());
    const route = new BacklogRoute(admin, leaders, silentLog);
    route.watch('t', 'g');
    const key = ['k0', 'k1', 'k2', 'k3', 'k4', 'k5', 'k6', 'k7'].find((k) => byKey([0, 1, 2, 3], k) === 0)!;
    await route.partitionFor('t', key, new Set());
    await vi.advanceTimersByTimeAsync(600);
    expect(await route.partitionFor('t', key, new Set())).not.toBe(0);
    answer = () => Promise.reject(new Error('GROUP_AUTHORIZATION_FAILED'));
    await vi.advanceTimersByTimeAsync(600);
    expect(await route.partitionFor('t', key, new Set())).toBe(0);
    answer = () => [5, 0, 0, 0];
    await vi.advanceTimersByTimeAsync(600);
    expect(await route.partitionFor('t', key, new Set())).not.toBe(0);
    answer = () => new Promise<never>(() => undefined);
    await vi.advanceTimersByTimeAsync(600 + 2_000);
    expect(await route.partitionFor('t', key, new Set())).toBe(0);
    route.close();
  });

  it("starts no other read of a topic while its last read's admin calls are still out, past the time it waits for them", async () => {
    vi.useFakeTimers();
    let settle: (values: number[]) => void = () => undefined;
    const { admin, calls } = fakeAdmin(() => new Promise<number[]>((resolve) => (settle = resolve)) as Promise<never>);
    const route = new BacklogRoute(admin, leaders, silentLog);
    route.watch('t', 'g');
    for (let i = 0; i < 20; i++) {
      await route.partitionFor('t', `k${i}`, new Set());
      await vi.advanceTimersByTimeAsync(500);
    }
    expect(calls.offsets).toBe(1);
    settle([0, 0, 0, 0]);
    await vi.advanceTimersByTimeAsync(600);
    expect(calls.offsets).toBe(2);
    route.close();
  });

  it('reads one round at a time, a few topics a round, and stops reading topics no request went to', async () => {
    vi.useFakeTimers();
    let hang = true;
    const { admin, calls } = fakeAdmin(() => (hang ? new Promise<never>(() => undefined) : [0, 0, 0, 0]));
    const route = new BacklogRoute(admin, leaders, silentLog);
    for (let i = 0; i < 10; i++) {
      route.watch(`t${i}`, `g${i}`);
      await route.partitionFor(`t${i}`, 'k', new Set());
    }
    // Hanging reads: one round under way, no other starts before it gives up.
    await vi.advanceTimersByTimeAsync(1_900);
    expect(calls.offsets).toBe(4);
    hang = false;
    await vi.advanceTimersByTimeAsync(200);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(calls.offsets).toBeLessThanOrEqual(12);
    // Nothing published for ACTIVE_MS: no more reads.
    await vi.advanceTimersByTimeAsync(31_000);
    const after = calls.offsets;
    await vi.advanceTimersByTimeAsync(5_000);
    expect(calls.offsets).toBe(after);
    route.close();
  });
});
