/**
 * A guard for a kafkajs 2.2.4 defect a broker loss exposes: a consumer
 * finds its group's coordinator only when it joins the group. When that
 * broker dies, the consumer goes on sending its heartbeats and offset commits
 * to it (connection refused, or "not found in the cached metadata" once the
 * broker is fenced) for as long as its retries last, and only then does
 * kafkajs restart it, as a new member that waits for the old one's session to
 * expire. A reply inbox whose coordinator was the SIGKILLed broker answered
 * one reply a second (one batch per retry, each ended by the failing commit)
 * for 19 s after the broker's partitions had new leaders, then restarted
 * (docs/kafka.md "Replicated clusters: fault rows").
 *
 * Kafka's Java client marks the coordinator unknown on such a failure and
 * looks it up again, keeping its member id and generation; this does the
 * same. A heartbeat or offset commit that fails because the coordinator
 * cannot be reached or is not the coordinator any more starts one lookup (in
 * the background, so the fetch loop keeps its pace); the failure is still
 * thrown, kafkajs retries as before, and its next heartbeat and commit go to
 * the coordinator found. The new coordinator has loaded the group with its
 * members, so the member goes on without a rebalance (or is told to rejoin).
 */
import { createRequire } from 'node:module';
import { GUARDED_KAFKAJS_VERSION } from './kafkajs-guard.js';

const require = createRequire(import.meta.url);

interface Coordinated {
  cluster: { findGroupCoordinator(args: { groupId: string }): Promise<unknown>; isConnected?(): boolean };
  groupId: string;
  coordinator: unknown;
  /** ConsumerGroup's: it hands its coordinator to the offset manager of each generation. */
  offsetManager?: { coordinator: unknown } | null;
}

type Method = (this: Coordinated, ...args: unknown[]) => Promise<unknown>;

/** Errors meaning the coordinator the consumer holds is gone or is not the coordinator any more. */
const LOST = new Set(['KafkaJSConnectionError', 'KafkaJSConnectionClosedError', 'KafkaJSBrokerNotFound', 'KafkaJSRequestTimeoutError']);
const MOVED = new Set(['GROUP_COORDINATOR_NOT_AVAILABLE', 'NOT_COORDINATOR_FOR_GROUP']);

export function lostCoordinator(err: unknown): boolean {
  for (let e = err as { name?: string; type?: string; cause?: unknown } | undefined, depth = 0; e && depth < 4; depth++) {
    if ((e.name !== undefined && LOST.has(e.name)) || (e.type !== undefined && MOVED.has(e.type))) return true;
    e = e.cause as typeof e;
  }
  return false;
}

/** Lookups under way, one per consumer group object or offset manager. */
const lookups = new WeakMap<Coordinated, Promise<void>>();

/** Looks the group's coordinator up again (one lookup at a time) and hands it to the holder and its offset manager. */
export function findCoordinatorAgain(holder: Coordinated): Promise<void> {
  let lookup = lookups.get(holder);
  // A consumer disconnected meanwhile (closed, shutting down) looks nothing up: the lookup would reconnect its client.
  if (!lookup && holder.cluster.isConnected?.() === false) return Promise.resolve();
  if (!lookup) {
    lookup = holder.cluster
      .findGroupCoordinator({ groupId: holder.groupId })
      .then((coordinator) => {
        if (holder.cluster.isConnected?.() === false) return;
        holder.coordinator = coordinator;
        if (holder.offsetManager) holder.offsetManager.coordinator = coordinator;
      })
      .catch(() => undefined)
      .finally(() => lookups.delete(holder));
    lookups.set(holder, lookup);
  }
  return lookup;
}

const WRAPPED = Symbol('kueuer coordinator guard');

function wrap(prototype: Record<string, unknown>, name: string): void {
  const original = prototype[name] as Method & { [WRAPPED]?: true };
  if (original[WRAPPED]) return;
  const wrapped = async function (this: Coordinated, ...args: unknown[]) {
    try {
      return await original.apply(this, args);
    } catch (err) {
      if (lostCoordinator(err)) void findCoordinatorAgain(this);
      throw err;
    }
  } satisfies Method;
  prototype[name] = Object.assign(wrapped, { [WRAPPED]: true as const });
}

/** Wraps ConsumerGroup#heartbeat and OffsetManager#getCoordinator of the reviewed kafkajs version. */
export function guardCoordinatorLoss(): 'guarded' | 'not-reviewed' {
  const { version } = require('kafkajs/package.json') as { version: string };
  if (version !== GUARDED_KAFKAJS_VERSION) return 'not-reviewed';
  const ConsumerGroup = require('kafkajs/src/consumer/consumerGroup.js') as { prototype: Record<string, unknown> };
  const OffsetManager = require('kafkajs/src/consumer/offsetManager/index.js') as { prototype: Record<string, unknown> };
  wrap(ConsumerGroup.prototype, 'heartbeat');
  wrap(OffsetManager.prototype, 'getCoordinator');
  return 'guarded';
}
