/**
 * On Kafka, a request published before a sidecar holds its partitions counts as one a previous
 * owner may have run, and reaches the app flagged `x-kueuer-redelivered` (ContiguousOffsets,
 * mayHaveRun): right for a real rerun, visible in a test that compares answers byte for byte. So a
 * stack on Kafka waits, as a rollout waits for its pods, until the sidecar's group is Stable with a
 * member, once the sidecar consumes (it first waits for its app: a stack whose app is not up
 * yet is not waited for).
 */
import { consumerGroup } from '../../shared/transport/kafka/config.js';
import { kafkaClient } from './kafka.js';
import { waitFor } from './poll.js';

/** How long the sidecar may take to reach its app before the stack stops waiting for it (the app is then down on purpose). */
const APP_WAIT_MS = 2_000;

export async function kafkaSidecarSettled(kafkaUrl: string, queue: string, consuming: Promise<boolean>): Promise<void> {
  const consumes = await Promise.race([consuming.catch(() => false), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), APP_WAIT_MS))]);
  if (!consumes) return;
  const admin = kafkaClient(kafkaUrl).admin();
  await admin.connect();
  try {
    await waitFor(
      async () => {
        const [group] = (await admin.describeGroups([consumerGroup(queue)])).groups;
        return group?.state === 'Stable' && group.members.length > 0;
      },
      20_000,
      `the sidecar of ${queue} to hold its partitions`,
    );
  } finally {
    await admin.disconnect();
  }
}
