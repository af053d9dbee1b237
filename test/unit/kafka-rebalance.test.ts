/** Issue 25: a rebalance ends the wait for a slot, and the sticky assigner keeps partitions with their live owner. */
import { AssignerProtocol, PartitionAssigners } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { Slots } from '../../shared/transport/kafka/slots.js';
import { decodeOwned, encodeOwned, stickyAssign, stickyAssigner, type StickyMember } from '../../shared/transport/kafka/sticky-assigner.js';

describe('slots: a waiter withdrawn by a rebalance', () => {
  it('stops waiting at once, holding no slot, and the next release goes to the remaining waiter', async () => {
    const slots = new Slots(1);
    expect(await slots.acquire()).toBe(true);
    const rebalance = new AbortController();
    const withdrawn = slots.acquire(rebalance.signal);
    let second = false;
    const waiting = slots.acquire().then((got) => (second = got));
    rebalance.abort();
    expect(await withdrawn).toBe(false);
    expect(second).toBe(false);
    slots.release();
    await waiting;
    expect(second).toBe(true);
    // One slot, held by the second waiter: no slot leaked or created.
    let third = false;
    void slots.acquire().then(() => (third = true));
    await new Promise((r) => setTimeout(r, 10));
    expect(third).toBe(false);
    slots.release();
    await new Promise((r) => setTimeout(r, 0));
    expect(third).toBe(true);
  });

  it('already aborted: does not take a free slot', async () => {
    const slots = new Slots(1);
    const signal = AbortSignal.abort();
    expect(await slots.acquire(signal)).toBe(false);
    expect(await slots.acquire()).toBe(true);
  });

  it('granted before the abort: keeps the slot', async () => {
    const slots = new Slots(1);
    await slots.acquire();
    const rebalance = new AbortController();
    const waiting = slots.acquire(rebalance.signal);
    slots.release();
    rebalance.abort();
    expect(await waiting).toBe(true);
  });
});

const T = 'kueuer.req.q';
const parts = (n: number) => ({ [T]: Array.from({ length: n }, (_, i) => i) });
const member = (memberId: string, owned: number[] = []): StickyMember => ({ memberId, topics: [T], owned: owned.length ? { [T]: owned } : {} });
const counts = (a: Record<string, Record<string, number[]>>) => Object.values(a).map((m) => m[T]?.length ?? 0);
const everyOnce = (a: Record<string, Record<string, number[]>>, n: number) =>
  expect(
    Object.values(a)
      .flatMap((m) => m[T] ?? [])
      .sort((x, y) => x - y),
  ).toEqual(Array.from({ length: n }, (_, i) => i));

describe('sticky assignment', () => {
  it('first generation: the same as kafkajs round-robin', async () => {
    const members = [member('b'), member('a'), member('c')];
    const ours = stickyAssign(members, parts(10));
    expect(ours).toEqual({ a: { [T]: [0, 3, 6, 9] }, b: { [T]: [1, 4, 7] }, c: { [T]: [2, 5, 8] } });
    const cluster = { findTopicPartitionMetadata: () => parts(10)[T]!.map((partitionId) => ({ partitionId })) };
    const rr = PartitionAssigners.roundRobin({ cluster, groupId: 'g', logger: undefined } as never);
    const theirs = await rr.assign({ members: members.map((m) => ({ memberId: m.memberId, memberMetadata: Buffer.alloc(0) })), topics: [T] });
    for (const { memberId, memberAssignment } of theirs) expect(AssignerProtocol.MemberAssignment.decode(memberAssignment)?.assignment).toEqual(ours[memberId]);
  });

  it('a member joins: only the surplus moves, to the new member, balanced within one', () => {
    const a = stickyAssign([member('a', [0, 2, 4, 6, 8]), member('b', [1, 3, 5, 7, 9]), member('c')], parts(10));
    everyOnce(a, 10);
    expect(Math.max(...counts(a)) - Math.min(...counts(a))).toBeLessThanOrEqual(1);
    // a and b keep all but their surplus: 3 partitions move (the least possible), all to c.
    expect(a.a![T]!.every((p) => [0, 2, 4, 6, 8].includes(p))).toBe(true);
    expect(a.b![T]!.every((p) => [1, 3, 5, 7, 9].includes(p))).toBe(true);
    expect(a.c![T]).toHaveLength(3);
  });

  it('one joins a group of one holding every partition: it gets half, the rest stay', () => {
    const a = stickyAssign([member('z', [0, 1, 2]), member('a')], parts(3));
    expect(a).toEqual({ z: { [T]: [0, 1] }, a: { [T]: [2] } });
  });

  it('a member gives up the partitions it listed last, not the busy ones it lists first', () => {
    expect(stickyAssign([member('z', [2, 0, 1]), member('a')], parts(3))).toEqual({ z: { [T]: [0, 2] }, a: { [T]: [1] } });
    expect(stickyAssign([member('z', [1, 2, 0, 3]), member('a'), member('b')], parts(4))).toEqual({ z: { [T]: [1, 2] }, a: { [T]: [0] }, b: { [T]: [3] } });
  });

  it('a member leaves: only its partitions move, to the members with fewest', () => {
    const a = stickyAssign([member('a', [0, 3, 6, 9]), member('c', [2, 5, 8])], parts(10));
    everyOnce(a, 10);
    expect(a.a![T]).toEqual(expect.arrayContaining([0, 3, 6, 9]));
    expect(a.c![T]).toEqual(expect.arrayContaining([2, 5, 8]));
    expect(counts(a).sort()).toEqual([5, 5]);
  });

  it('stale claims: a partition claimed twice goes once, partitions that no longer exist are dropped', () => {
    const a = stickyAssign([member('a', [0, 1, 7, 99]), member('b', [1, 2])], parts(4));
    everyOnce(a, 4);
    expect(a.a![T]).toEqual(expect.arrayContaining([0, 1]));
    expect(a.b![T]).toEqual(expect.arrayContaining([2]));
  });

  it('garbage userData counts as holding nothing; a hostile size is not parsed', () => {
    for (const bad of [
      Buffer.from('not json'),
      Buffer.from('{"owned":[1,2]}'),
      Buffer.from('{"owned":{"t":"1"}}'),
      Buffer.from('null'),
      Buffer.alloc(0),
      null,
      Buffer.from(JSON.stringify({ owned: { t: Array.from({ length: 20_000 }, (_, i) => i) } })),
    ])
      expect(decodeOwned(bad)).toEqual({});
    expect(decodeOwned(Buffer.from('{"owned":{"t":[1,-1,2.5,"3",4]}}'))).toEqual({ t: [1, 4] });
    expect(decodeOwned(encodeOwned({ [T]: [0, 2] }))).toEqual({ [T]: [0, 2] });
  });

  it('through kafkajs metadata: the leader reads each member’s claims, garbage falls back to round-robin', async () => {
    const cluster = { findTopicPartitionMetadata: () => parts(4)[T]!.map((partitionId) => ({ partitionId })) };
    const metadata = (owned: number[]) =>
      stickyAssigner(() => ({ [T]: owned }))({ cluster, groupId: 'g', logger: undefined } as never).protocol({ topics: [T] }).metadata;
    const assigner = stickyAssigner(() => ({}))({ cluster, groupId: 'g', logger: undefined } as never);
    const decode = async (members: Array<{ memberId: string; memberMetadata: Buffer }>) =>
      Object.fromEntries(
        (await assigner.assign({ members, topics: [T] })).map((m) => [
          m.memberId,
          AssignerProtocol.MemberAssignment.decode(m.memberAssignment)?.assignment[T] ?? [],
        ]),
      );
    expect(
      await decode([
        { memberId: 'a', memberMetadata: metadata([]) },
        { memberId: 'b', memberMetadata: metadata([0, 1, 2, 3]) },
      ]),
    ).toEqual({ a: [2, 3], b: [0, 1] });
    expect(
      await decode([
        { memberId: 'a', memberMetadata: Buffer.from('garbage') },
        { memberId: 'b', memberMetadata: Buffer.from([0, 1]) },
      ]),
    ).toEqual({
      a: [0, 2],
      b: [1, 3],
    });
  });
});
