/**
 * A sticky partition assigner for Kueuer's consumer groups (issue 25). kafkajs's default,
 * round-robin, deals the partitions out afresh at every generation, so a member joining moves
 * partitions between members that stay, with their running requests: the old owner finishes its
 * request but commits nothing and the new owner runs it again. Here every member tells the leader,
 * in its JoinGroup userData, which partitions it holds; each keeps them, and only the partitions
 * of members that left and the surplus needed for balance (within one partition) move. With no
 * member holding anything (a group's first generation) it deals out exactly as round-robin does.
 */
import { AssignerProtocol, type PartitionAssigner } from 'kafkajs';

export const STICKY_ASSIGNER = 'KueuerStickyAssigner';
/** A larger userData is not read (a hostile or broken member): its claims count as none. */
const MAX_USER_DATA_BYTES = 64 * 1024;

export interface StickyMember {
  memberId: string;
  /** The topics it subscribes to. */
  topics: string[];
  /** The partitions it holds per topic, as it said in its userData (none when unreadable). */
  owned: Record<string, number[]>;
}

/**
 * The assignment, per member and topic (pure). `partitions` lists each topic's partitions. A
 * partition two members both claim (one of them stale) goes to the member listed first by id. A
 * member giving up its surplus gives the partitions it listed last (it lists busy ones first).
 */
export function stickyAssign(members: StickyMember[], partitions: Record<string, number[]>): Record<string, Record<string, number[]>> {
  const sorted = [...members].sort((a, b) => (a.memberId < b.memberId ? -1 : a.memberId > b.memberId ? 1 : 0));
  const result: Record<string, Record<string, number[]>> = Object.create(null) as Record<string, Record<string, number[]>>;
  for (const m of sorted) result[m.memberId] = Object.create(null) as Record<string, number[]>;
  const topics = Object.keys(partitions).sort();
  const anyClaim = sorted.some((m) => topics.some((t) => (m.owned[t]?.length ?? 0) > 0));
  if (!anyClaim) {
    // Round-robin, as kafkajs's own: one counter over every topic's partitions, members by id.
    let i = 0;
    for (const topic of topics) {
      const subscribers = sorted.filter((m) => m.topics.includes(topic));
      for (const p of partitions[topic] ?? []) {
        if (subscribers.length === 0) continue;
        const member = subscribers[i++ % subscribers.length]!;
        (result[member.memberId]![topic] ??= []).push(p);
      }
    }
    return result;
  }
  for (const topic of topics) {
    const subscribers = sorted.filter((m) => m.topics.includes(topic));
    if (subscribers.length === 0) continue;
    const all = [...new Set(partitions[topic] ?? [])].sort((a, b) => a - b);
    const exists = new Set(all);
    const taken = new Set<number>();
    // What each member keeps of its claims: partitions that exist, not already kept by another.
    const kept = new Map<string, number[]>();
    for (const m of subscribers) {
      const mine: number[] = [];
      for (const p of m.owned[topic] ?? []) {
        if (!exists.has(p) || taken.has(p)) continue;
        taken.add(p);
        mine.push(p);
      }
      // In the member's order: it lists the partitions with running requests first, so its surplus is idle ones.
      kept.set(m.memberId, mine);
    }
    // Balanced within one: `extra` members get one more; those holding the most, so fewest move.
    const base = Math.floor(all.length / subscribers.length);
    let extra = all.length % subscribers.length;
    const byHolding = [...subscribers].sort((a, b) => kept.get(b.memberId)!.length - kept.get(a.memberId)!.length);
    const target = new Map<string, number>();
    for (const m of byHolding) target.set(m.memberId, base + (extra-- > 0 ? 1 : 0));
    const pool: number[] = all.filter((p) => !taken.has(p));
    for (const m of subscribers) {
      const mine = kept.get(m.memberId)!;
      const surplus = mine.splice(target.get(m.memberId)!);
      pool.push(...surplus);
    }
    pool.sort((a, b) => a - b);
    for (const m of subscribers) {
      const mine = kept.get(m.memberId)!;
      while (mine.length < target.get(m.memberId)! && pool.length > 0) mine.push(pool.shift()!);
      mine.sort((a, b) => a - b);
      if (mine.length > 0) result[m.memberId]![topic] = mine;
    }
  }
  return result;
}

/** userData: what this member holds, `{"owned":{"topic":[0,2]}}`, as JSON; those with running requests first. */
export function encodeOwned(owned: Record<string, number[]>): Buffer {
  return Buffer.from(JSON.stringify({ owned }));
}

/** Reads a member's userData; anything unexpected (too big, not JSON, wrong shape) counts as holding nothing. */
export function decodeOwned(userData: Buffer | null | undefined): Record<string, number[]> {
  const owned: Record<string, number[]> = Object.create(null) as Record<string, number[]>;
  if (!userData || userData.length === 0 || userData.length > MAX_USER_DATA_BYTES) return owned;
  let parsed: unknown;
  try {
    parsed = JSON.parse(userData.toString('utf8'));
  } catch {
    return owned;
  }
  const claims = (parsed as { owned?: unknown } | null)?.owned;
  if (typeof claims !== 'object' || claims === null || Array.isArray(claims)) return owned;
  for (const [topic, list] of Object.entries(claims)) {
    if (!Array.isArray(list)) continue;
    const valid = list.filter((p): p is number => Number.isSafeInteger(p) && (p as number) >= 0);
    if (valid.length > 0) owned[topic] = valid;
  }
  return owned;
}

/**
 * The kafkajs assigner. `owned` answers, at each join, which partitions this member holds now
 * (the last assignment it got); the leader reads every member's answer in assign().
 */
export function stickyAssigner(owned: () => Record<string, number[]>): PartitionAssigner {
  return ({ cluster }) => ({
    name: STICKY_ASSIGNER,
    version: 0,
    async assign({ members, topics }) {
      const decoded: StickyMember[] = members.map(({ memberId, memberMetadata }) => {
        let metadata: { topics: string[]; userData: Buffer } | null = null;
        try {
          metadata = AssignerProtocol.MemberMetadata.decode(memberMetadata);
        } catch {
          metadata = null;
        }
        // A member whose metadata cannot be read subscribes, as kafkajs assumes, to every topic.
        return { memberId, topics: metadata?.topics ?? topics, owned: decodeOwned(metadata?.userData) };
      });
      const partitions: Record<string, number[]> = Object.create(null) as Record<string, number[]>;
      for (const topic of topics) partitions[topic] = cluster.findTopicPartitionMetadata(topic).map((m) => m.partitionId);
      const assignment = stickyAssign(decoded, partitions);
      return Object.entries(assignment).map(([memberId, perTopic]) => ({
        memberId,
        memberAssignment: AssignerProtocol.MemberAssignment.encode({ version: 0, assignment: perTopic, userData: Buffer.alloc(0) }),
      }));
    },
    protocol({ topics }) {
      return { name: STICKY_ASSIGNER, metadata: AssignerProtocol.MemberMetadata.encode({ version: 0, topics, userData: encodeOwned(owned()) }) };
    },
  });
}
