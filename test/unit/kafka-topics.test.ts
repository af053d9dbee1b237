/** How Kueuer sizes the replication of the topics it creates, and what it reports about topics it finds. */
import { describe, expect, it } from 'vitest';
import { parseOptions } from '../../shared/options.js';
import { kafkaOptions } from '../../shared/common-options.js';
import { pickPartition } from '../../shared/transport/kafka/leaders.js';
import { replicationOn, singlePointsOfFailure } from '../../shared/transport/kafka/topics.js';

describe('replication of the topics Kueuer creates', () => {
  const wanted = { replicationFactor: 3, minInsyncReplicas: 2 };

  it('asks for RF 3 and min.insync.replicas 2 on three brokers or more', () => {
    expect(replicationOn(wanted, 3)).toEqual({ replicationFactor: 3, minInsyncReplicas: 2 });
    expect(replicationOn(wanted, 5)).toEqual({ replicationFactor: 3, minInsyncReplicas: 2 });
  });

  it('takes as many replicas as there are brokers, and caps min.insync.replicas at the RF', () => {
    expect(replicationOn(wanted, 2)).toEqual({ replicationFactor: 2, minInsyncReplicas: 2 });
    expect(replicationOn(wanted, 1)).toEqual({ replicationFactor: 1, minInsyncReplicas: 1 });
    expect(replicationOn({ replicationFactor: 2, minInsyncReplicas: 3 }, 5)).toEqual({ replicationFactor: 2, minInsyncReplicas: 2 });
  });

  it('reports an existing topic with RF 1, on any cluster', () => {
    const [problem, ...rest] = singlePointsOfFailure('kueuer.q', { replicationFactor: 1, minInsyncReplicas: 1 }, 1);
    expect(rest).toEqual([]);
    expect(problem).toContain('Kafka topic kueuer.q has replication factor 1');
    expect(problem).toContain('does not change existing topics');
    expect(problem).toContain("Raising an existing topic's replication");
    expect(singlePointsOfFailure('kueuer.q', { replicationFactor: 1, minInsyncReplicas: 1 }, 3)).toHaveLength(1);
  });

  it('reports min.insync.replicas below 2 on a multi-broker cluster only', () => {
    const [problem] = singlePointsOfFailure('kueuer.q', { replicationFactor: 3, minInsyncReplicas: 1 }, 3);
    expect(problem).toContain('min.insync.replicas 1');
    expect(problem).toContain(
      'kafka-configs.sh --bootstrap-server <broker:port> --alter --entity-type topics --entity-name kueuer.q --add-config min.insync.replicas=2',
    );
    expect(singlePointsOfFailure('kueuer.q', { replicationFactor: 3, minInsyncReplicas: 2 }, 3)).toEqual([]);
    expect(singlePointsOfFailure('kueuer.q', { replicationFactor: 2, minInsyncReplicas: 2 }, 2)).toEqual([]);
  });

  it('reads --kafka-replication-factor and --kafka-min-insync-replicas, defaults 3 and 2, and refuses 0', () => {
    expect(parseOptions(kafkaOptions(), [], {})).toMatchObject({ kafkaReplicationFactor: 3, kafkaMinInsyncReplicas: 2 });
    expect(parseOptions(kafkaOptions(), ['--kafka-replication-factor', '5'], { KUEUER_KAFKA_MIN_INSYNC_REPLICAS: '3' })).toMatchObject({
      kafkaReplicationFactor: 5,
      kafkaMinInsyncReplicas: 3,
    });
    expect(() => parseOptions(kafkaOptions(), ['--kafka-replication-factor', '0'], {})).toThrow(/kafka-replication-factor/);
  });
});

describe('the partition a request goes to while a broker is down', () => {
  const leaders = ['b1:9092', 'b2:9092', 'b3:9092', 'b1:9092', 'b2:9092', 'b3:9092'];
  const down = (dead: string) => (broker: string) => broker === dead;

  it("names a partition for every request once the topic's leaders are known, and leaves kafkajs the choice before", () => {
    const chosen = new Set(Array.from({ length: 200 }, (_, i) => pickPartition(leaders, () => false, `req-${i}`)));
    expect([...chosen].sort()).toEqual([0, 1, 2, 3, 4, 5]);
    expect(pickPartition(undefined, down('b2:9092'), 'req-1')).toBeUndefined();
  });

  it('spreads requests over the partitions whose leader is reachable, never one led by the dead broker', () => {
    const chosen = new Set(Array.from({ length: 200 }, (_, i) => pickPartition(leaders, down('b2:9092'), `req-${i}`)));
    expect([...chosen].sort()).toEqual([0, 2, 3, 5]);
  });

  it('avoids a partition a send to failed; with no reachable leader left, any untried partition, then any', () => {
    const pick = (unreachable: (b: string) => boolean, failed: number[]) =>
      [...new Set(Array.from({ length: 200 }, (_, i) => pickPartition(leaders, unreachable, `req-${i}`, new Set(failed))))].sort();
    expect(pick(() => false, [0, 1])).toEqual([2, 3, 4, 5]);
    expect(pick(() => true, [0, 1])).toEqual([2, 3, 4, 5]);
    expect(pick(() => false, [0, 1, 2, 3, 4, 5])).toEqual([0, 1, 2, 3, 4, 5]);
  });
});
