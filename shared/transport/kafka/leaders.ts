/**
 * Which partitions of a request topic to publish to while a broker is down.
 *
 * kafkajs sends a record to the partition its key hashes to and, when that
 * partition's leader is gone, retries against it until the controller has
 * moved the leadership (broker.session.timeout.ms, 9 s by default): far past
 * --publish-timeout, so a third of new requests got 503 for as long as a
 * broker of three was down. A request can go to any partition (its key, the
 * request id, orders nothing), so a request is given a partition whose leader
 * the client can reach, chosen by its key among those. The choice is made
 * once per send: kafkajs re-partitions a batch on each retry, and a record
 * moved to a broker that had already answered would never be sent. A send
 * that fails is tried again on another partition until --publish-timeout
 * (transport.ts), as kafkajs's own retries would have resent it.
 */
import type { Admin } from 'kafkajs';
import { formatHostPort } from '../../options.js';

/** Partition leaders of each topic, by host:port. */
type Leaders = Map<string, string[]>;

/** The partition for `key` among those whose leader is reachable; undefined leaves the choice to kafkajs (no metadata yet, or none reachable). */
export function pickPartition(
  leaders: readonly string[] | undefined,
  unreachable: (broker: string) => boolean,
  key: string,
  failed: ReadonlySet<number> = new Set(),
): number | undefined {
  if (!leaders) return undefined;
  const live = leaders.flatMap((leader, partition) => (leader !== '' && !unreachable(leader) && !failed.has(partition) ? [partition] : []));
  if (live.length === 0 || live.length === leaders.length) return undefined;
  let hash = 0;
  for (let i = 0; i < key.length; i++) hash = (hash * 31 + key.charCodeAt(i)) | 0;
  return live[Math.abs(hash) % live.length];
}

export class LeaderMap {
  private readonly leaders: Leaders = new Map();
  private refreshing: Promise<void> | null = null;

  constructor(
    private readonly admin: Admin,
    private readonly unreachable: (broker: string) => boolean,
  ) {}

  /** The partition to publish `key` to, or undefined for kafkajs's own choice; refreshes the topic's leaders in the background. */
  partitionFor(topic: string, key: string, failed?: ReadonlySet<number>): number | undefined {
    void this.refresh([...new Set([...this.leaders.keys(), topic])]);
    return pickPartition(this.leaders.get(topic), this.unreachable, key, failed);
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
