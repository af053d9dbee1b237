/**
 * Which partition of a request topic a request goes to.
 *
 * kafkajs sends a record to the partition its key hashes to and, when that
 * partition's leader is gone, retries against it until the controller has
 * moved the leadership (broker.session.timeout.ms, 9 s by default): far past
 * --publish-timeout, so a third of new requests got 503 for as long as a
 * broker of three was down. A request can go to any partition (its key, the
 * request id, orders nothing), so a request is given a partition whose leader
 * the client can reach, chosen by its key among those. The transport always
 * names the partition once it knows the topic's partitions, so that each
 * produce request carries one partition and its answer settles exactly those
 * records (tick-batcher.ts). A send that fails is tried again (publish.ts):
 * on another partition when nothing was written, on the same one, flagged,
 * when the record may be in the log.
 */
import type { Admin } from 'kafkajs';
import { formatHostPort } from '../../options.js';

/** Partition leaders of each topic, by host:port. */
type Leaders = Map<string, string[]>;

/**
 * The partitions a new request may go to: those whose leader is reachable and no send to which
 * failed; when none is left, those no send failed to; then all. Undefined only while the topic's
 * leaders are not known.
 */
export function partitionCandidates(
  leaders: readonly string[] | undefined,
  unreachable: (broker: string) => boolean,
  failed: ReadonlySet<number> = new Set(),
): number[] | undefined {
  if (!leaders || leaders.length === 0) return undefined;
  const all = leaders.map((_, partition) => partition);
  const untried = all.filter((p) => !failed.has(p));
  const live = untried.filter((p) => leaders[p] !== '' && !unreachable(leaders[p]!));
  return live.length > 0 ? live : untried.length > 0 ? untried : all;
}

/** One of `candidates` (not empty), chosen by `key`'s hash. */
export function byKey(candidates: readonly number[], key: string): number {
  let hash = 0;
  for (let i = 0; i < key.length; i++) hash = (hash * 31 + key.charCodeAt(i)) | 0;
  return candidates[Math.abs(hash) % candidates.length]!;
}

/** The partition for `key` among partitionCandidates; undefined (kafkajs chooses) only while the topic's leaders are not known. */
export function pickPartition(
  leaders: readonly string[] | undefined,
  unreachable: (broker: string) => boolean,
  key: string,
  failed: ReadonlySet<number> = new Set(),
): number | undefined {
  const candidates = partitionCandidates(leaders, unreachable, failed);
  return candidates && byKey(candidates, key);
}

export class LeaderMap {
  private readonly leaders: Leaders = new Map();
  private refreshing: Promise<void> | null = null;

  constructor(
    private readonly admin: Admin,
    private readonly unreachable: (broker: string) => boolean,
  ) {}

  /**
   * The partition to publish `key` to; refreshes the topics' leaders in the background, and waits
   * for the first read of a topic's. Undefined (kafkajs's own choice) only when that read failed.
   */
  async partitionFor(topic: string, key: string, failed?: ReadonlySet<number>): Promise<number | undefined> {
    const candidates = await this.candidates(topic, failed);
    return candidates && byKey(candidates, key);
  }

  /** partitionCandidates of the topic, as partitionFor reads its leaders. */
  async candidates(topic: string, failed?: ReadonlySet<number>): Promise<number[] | undefined> {
    const reading = this.refresh([...new Set([...this.leaders.keys(), topic])]);
    if (!this.leaders.has(topic)) {
      await reading;
      // A read already under way when this topic was first asked for did not include it.
      if (!this.leaders.has(topic)) await this.read([topic]).catch(() => undefined);
    }
    return partitionCandidates(this.leaders.get(topic), this.unreachable, failed);
  }

  /** One metadata read at a time; errors leave the last known leaders. */
  refresh(topics: string[]): Promise<void> {
    this.refreshing ??= this.read(topics)
      .catch(() => undefined)
      .finally(() => setTimeout(() => (this.refreshing = null), 1000).unref());
    return this.refreshing;
  }

  private async read(topics: string[]): Promise<void> {
    const { brokers } = await this.admin.describeCluster();
    const address = new Map(brokers.map((b) => [b.nodeId, formatHostPort({ host: b.host, port: b.port })]));
    const metadata = await this.admin.fetchTopicMetadata({ topics });
    for (const t of metadata.topics) {
      const byPartition: string[] = [];
      for (const p of t.partitions) byPartition[p.partitionId] = address.get(p.leader) ?? '';
      this.leaders.set(t.name, byPartition);
    }
  }
}
