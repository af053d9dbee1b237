/**
 * Which partition a new request goes to: the one with the least backlog
 * (issue 25, the origin experiment's item 3).
 *
 * A partition is read by one group member at a time, in offset order, so a
 * request placed by its id's hash waited behind its partition's earlier
 * records while other pods were idle. Here the responder keeps, per request
 * topic it publishes to, each partition's backlog (end offset minus the
 * group's committed offset: the records waiting and the ones running) and,
 * while the group is stable, which member owns each partition: a request goes
 * to the partition whose owner has the least backlog over all its partitions,
 * then to the least backlogged of that owner's, ties broken at random. The
 * table is read every REFRESH_MS (one round at a time, at most
 * TOPICS_PER_ROUND topics a round, each read bounded by READ_TIMEOUT_MS);
 * the requests this responder placed since a table's read began count on
 * top of it, so a burst spreads before the next read.
 *
 * Partitions whose leader is unreachable or a send to which failed are not
 * candidates (leaders.ts), nor, while the table is fresh, partitions it does
 * not know or no member of a stable group reads (added to the topic since:
 * kafkajs members rebalance onto them only at their next metadata refresh,
 * 5 min; by the key, half the requests after a growth from 2 to 4 waited). Without a table read within STALE_MS (the topic's
 * first requests, or the read failed: no DESCRIBE on the group, a broker
 * down), a request goes where its key hashes among the candidates, as
 * before. A copy sent again after a send that may have written the record
 * stays on its partition (publish.ts); only a send that wrote nothing makes
 * the choice again, without that partition. Each responder replica counts
 * only its own placements; the others' show in the next read.
 */
import { AssignerProtocol, type Admin } from 'kafkajs';
import type { Logger } from 'pino';
import { settleWithin } from '../../timers.js';
import { computeLag } from './depth.js';
import { byKey, type LeaderMap } from './leaders.js';
import type { RequestRoute } from './publish.js';

/** A topic's backlog as last read. */
export interface BacklogTable {
  /** Per partition: records published and not yet committed by the group. */
  lag: ReadonlyMap<number, number>;
  /**
   * Per partition: the member owning it, when the group was stable (and no partition had two).
   * A partition of `lag` missing here is read by no member: added to the topic since the group's
   * last rebalance, which a kafkajs member asks for only at its next metadata refresh (5 min).
   */
  owners?: ReadonlyMap<number, string>;
}

/** Per partition, latest minus committed offset (the earliest offset where the group has committed nothing), as depth.ts counts. */
export function partitionLags(
  latest: ReadonlyArray<{ partition: number; offset: string; low?: string }>,
  committed: ReadonlyArray<{ partition: number; offset: string }>,
): Map<number, number> {
  return new Map(latest.map((p) => [p.partition, computeLag([p], committed)]));
}

/**
 * Per partition of `topic`, its owner: only for a stable group in which no partition has two
 * owners and some of `partitions` have one (during a rebalance, assignments say nothing of who
 * reads what next). A partition without one is missing from the map.
 */
export function partitionOwners(
  state: string,
  members: ReadonlyArray<{ memberId: string; assignment: Record<string, number[]> }>,
  topic: string,
  partitions: Iterable<number>,
): Map<number, string> | undefined {
  if (state !== 'Stable') return undefined;
  const owners = new Map<number, string>();
  for (const m of members) {
    for (const p of m.assignment[topic] ?? []) {
      if (owners.has(p)) return undefined;
      owners.set(p, m.memberId);
    }
  }
  for (const p of partitions) if (owners.has(p)) return owners;
  return undefined;
}

/**
 * The candidate with the least backlog, counting `own` (this responder's placements since the
 * table was read) on top of it: first by its owner's backlog over all the owner's partitions (when
 * owners are known), then by its own; ties at random. Only among the candidates the table knows,
 * and of those the ones a member reads, if any; undefined when the table knows none.
 */
export function leastBacklog(
  candidates: readonly number[],
  table: BacklogTable,
  own: ReadonlyMap<number, number>,
  random: () => number = Math.random,
): number | undefined {
  // Not a partition the read did not know (added to the topic since), nor one no member reads
  // while some are read: a request there waits for a rebalance.
  const known = candidates.filter((p) => table.lag.has(p));
  if (known.length === 0) return undefined;
  const read = table.owners ? known.filter((p) => table.owners!.has(p)) : [];
  const pool = read.length > 0 ? read : known;
  const load = (p: number) => (table.lag.get(p) ?? 0) + (own.get(p) ?? 0);
  const ownerLoad = new Map<string, number>();
  if (table.owners) for (const [p, owner] of table.owners) ownerLoad.set(owner, (ownerLoad.get(owner) ?? 0) + load(p));
  const score = (p: number): [number, number] => {
    const owner = table.owners?.get(p);
    return [owner === undefined ? load(p) : ownerLoad.get(owner)!, load(p)];
  };
  let best: number[] = [];
  let bestScore: [number, number] = [Infinity, Infinity];
  for (const p of pool) {
    const s = score(p);
    const cmp = s[0] - bestScore[0] || s[1] - bestScore[1];
    if (cmp < 0) {
      best = [p];
      bestScore = s;
    } else if (cmp === 0) best.push(p);
  }
  return best[Math.min(best.length - 1, Math.floor(random() * best.length))];
}

/** Between two rounds of reads. */
const REFRESH_MS = 500;
/** A table older than this is not used (the key's hash decides). */
const STALE_MS = 5_000;
/** Each topic's read (offsets, committed offsets, group) gives up after this. */
const READ_TIMEOUT_MS = 2_000;
/** Topics read per round, those read longest ago first: with more active topics, each is read less often. */
const TOPICS_PER_ROUND = 4;
/** A topic no request went to for this long is no longer read. */
const ACTIVE_MS = 30_000;

interface TopicState {
  /** The consumer group reading the topic. */
  group: string;
  usedAt: number;
  /** Per partition: requests this responder placed there, ever. */
  placed: Map<number, number>;
  table: BacklogTable | null;
  /** When the table's read began, and `placed` then. */
  readAt: number;
  placedAtRead: Map<number, number>;
  /** Whether the last read failed (logged once per streak of failures). */
  failing: boolean;
  /** Whether the last read's admin calls are still out (kafkajs retries on its own past READ_TIMEOUT_MS): no other starts. */
  pending: boolean;
}

export class BacklogRoute implements RequestRoute {
  private readonly topics = new Map<string, TopicState>();
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly admin: Pick<Admin, 'fetchTopicOffsets' | 'fetchOffsets' | 'describeGroups'>,
    private readonly leaders: Pick<LeaderMap, 'candidates' | 'refresh'>,
    private readonly log: Logger,
  ) {}

  /** Names the consumer group reading a request topic: without it, the topic's requests go by their key. */
  watch(topic: string, group: string): void {
    if (!this.topics.has(topic))
      this.topics.set(topic, { group, usedAt: 0, placed: new Map(), table: null, readAt: 0, placedAtRead: new Map(), failing: false, pending: false });
  }

  async partitionFor(topic: string, key: string, failed: ReadonlySet<number>): Promise<number | undefined> {
    const candidates = await this.leaders.candidates(topic, failed);
    if (!candidates) return undefined;
    const state = this.topics.get(topic);
    if (!state) return byKey(candidates, key);
    state.usedAt = Date.now();
    this.schedule();
    const fresh = state.table !== null && Date.now() - state.readAt <= STALE_MS;
    const own = new Map([...state.placed].map(([p, n]) => [p, n - (state.placedAtRead.get(p) ?? 0)] as const));
    const partition = (fresh ? leastBacklog(candidates, state.table!, own) : undefined) ?? byKey(candidates, key);
    state.placed.set(partition, (state.placed.get(partition) ?? 0) + 1);
    return partition;
  }

  refresh(topics: string[]): Promise<void> {
    return this.leaders.refresh(topics);
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
  }

  /** The next round, unless one is pending or under way. */
  private schedule(): void {
    if (this.timer || this.closed) return;
    this.timer = setTimeout(() => void this.round(), REFRESH_MS);
    this.timer.unref();
  }

  private async round(): Promise<void> {
    const now = Date.now();
    const active = [...this.topics].filter(([, s]) => now - s.usedAt < ACTIVE_MS);
    const due = active
      .filter(([, s]) => !s.pending)
      .sort(([, a], [, b]) => a.readAt - b.readAt)
      .slice(0, TOPICS_PER_ROUND);
    await Promise.all(due.map(([topic, state]) => this.read(topic, state)));
    this.timer = undefined;
    // Rounds stop once no request has gone to any topic for ACTIVE_MS; the next request starts them again.
    if (active.length > 0) this.schedule();
  }

  private async read(topic: string, state: TopicState): Promise<void> {
    const startedAt = Date.now();
    const placedAtRead = new Map(state.placed);
    const reading = this.readTable(topic, state.group);
    state.pending = true;
    void reading.catch(() => undefined).finally(() => (state.pending = false));
    try {
      const table = await settleWithin(reading, READ_TIMEOUT_MS, () => new Error(`no answer within ${READ_TIMEOUT_MS} ms`));
      Object.assign(state, { table, readAt: startedAt, placedAtRead, failing: false });
    } catch (err) {
      // Unknown from now on: requests go by their key until a read succeeds.
      if (!state.failing)
        this.log.info({ topic, err: (err as Error).message }, "cannot read the request topic's backlog; requests go to partitions by their id");
      Object.assign(state, { table: null, failing: true, readAt: startedAt });
    }
  }

  private async readTable(topic: string, group: string): Promise<BacklogTable> {
    const [latest, [committed], { groups }] = await Promise.all([
      this.admin.fetchTopicOffsets(topic),
      this.admin.fetchOffsets({ groupId: group, topics: [topic] }),
      this.admin.describeGroups([group]),
    ]);
    const lag = partitionLags(
      latest.map((p) => ({ partition: p.partition, offset: p.high, low: p.low })),
      committed?.partitions ?? [],
    );
    const described = groups[0];
    const members = (described?.members ?? []).map((m) => ({
      memberId: m.memberId,
      assignment: AssignerProtocol.MemberAssignment.decode(m.memberAssignment)?.assignment ?? {},
    }));
    const owners = described ? partitionOwners(described.state, members, topic, lag.keys()) : undefined;
    return owners ? { lag, owners } : { lag };
  }
}
