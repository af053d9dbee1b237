/** How Kueuer sizes the replication of the topics it creates, and what it reports about topics it finds. */
import { describe, expect, it } from 'vitest';
import { parseOptions } from '../../shared/options.js';
import { kafkaOptions } from '../../shared/common-options.js';
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
    expect(singlePointsOfFailure('kueuer.q', { replicationFactor: 1, minInsyncReplicas: 1 }, 3)).toHaveLength(1);
  });

  it('reports min.insync.replicas below 2 on a multi-broker cluster only', () => {
    const [problem] = singlePointsOfFailure('kueuer.q', { replicationFactor: 3, minInsyncReplicas: 1 }, 3);
    expect(problem).toContain('min.insync.replicas 1');
    expect(problem).toContain('--add-config min.insync.replicas=2');
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
