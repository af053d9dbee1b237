/**
 * kafkajs 2.2.4 finds a consumer group's coordinator only when it joins; Kueuer's guard
 * (coordinator-guard.ts) looks it up again when a heartbeat or an offset commit finds it gone, so
 * the member goes on with the new coordinator instead of failing until kafkajs restarts it.
 * Run on kafkajs's own ConsumerGroup and OffsetManager with a fake cluster.
 */
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { coordinatorGuard } from '../../shared/transport/kafka/client.js';
import { findCoordinatorAgain, lostCoordinator } from '../../shared/transport/kafka/coordinator-guard.js';

const require = createRequire(import.meta.url);
type Broker = { nodeId: number; isConnected(): boolean; heartbeat(p: unknown): Promise<void> };
type Group = { memberId: string; coordinator: Broker; heartbeat(o: { interval: number }): Promise<void>; offsetManager: unknown };
type Offsets = { coordinator: Broker; getCoordinator(): Promise<Broker> };
const ConsumerGroup = require('kafkajs/src/consumer/consumerGroup.js') as new (o: Record<string, unknown>) => Group;
const OffsetManager = require('kafkajs/src/consumer/offsetManager/index.js') as new (o: Record<string, unknown>) => Offsets;

const logger: Record<string, unknown> = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
logger.namespace = () => logger;
const refused = () =>
  Object.assign(new Error('Connection error: connect ECONNREFUSED 127.0.0.1:29201'), { name: 'KafkaJSConnectionError', code: 'ECONNREFUSED' });
const dead: Broker = { nodeId: 1, isConnected: () => false, heartbeat: () => Promise.reject(refused()) };
const beats: number[] = [];
const alive: Broker = { nodeId: 2, isConnected: () => true, heartbeat: async () => void beats.push(2) };

/** A cluster whose broker 1 is gone (not in the metadata any more) and whose coordinator is now broker 2. */
const cluster = {
  findBroker: ({ nodeId }: { nodeId: number }) =>
    nodeId === 2
      ? Promise.resolve(alive)
      : Promise.reject(Object.assign(new Error(`Broker ${nodeId} not found in the cached metadata`), { name: 'KafkaJSBrokerNotFound' })),
  findGroupCoordinator: () => Promise.resolve(alive),
  committedOffsets: () => ({}),
};
const settle = () => new Promise((r) => setImmediate(r));

describe('the kafkajs coordinator guard', () => {
  it('is applied to the installed kafkajs', () => expect(coordinatorGuard).toBe('guarded'));

  it('a heartbeat refused by a dead coordinator still fails, and the next one goes to the coordinator looked up meanwhile', async () => {
    const group = new ConsumerGroup({ cluster, groupId: 'g', topics: [], logger, instrumentationEmitter: { emit: () => undefined }, assigners: [] });
    group.memberId = 'member-1';
    group.coordinator = dead;
    await expect(group.heartbeat({ interval: 0 })).rejects.toThrow(/ECONNREFUSED/);
    await settle();
    expect(group.coordinator).toBe(alive);
    await group.heartbeat({ interval: 0 });
    expect(beats).toEqual([2]);
  });

  it("an offset commit's coordinator, gone from the metadata, is looked up again instead of asked for by its old node id", async () => {
    const offsets = new OffsetManager({ cluster, coordinator: dead, memberAssignment: {}, groupId: 'g', generationId: 1, memberId: 'member-1' });
    await expect(offsets.getCoordinator()).rejects.toThrow(/not found in the cached metadata/);
    await settle();
    await expect(offsets.getCoordinator()).resolves.toBe(alive);
  });

  it('looks nothing up for a consumer disconnected meanwhile, whose lookup would reconnect its client', async () => {
    let lookups = 0;
    let connected = false;
    const holder = {
      groupId: 'g',
      coordinator: 'old' as unknown,
      cluster: {
        isConnected: () => connected,
        findGroupCoordinator: async () => {
          lookups++;
          return 'new';
        },
      },
    };
    await findCoordinatorAgain(holder);
    expect(lookups).toBe(0);
    expect(holder.coordinator).toBe('old');
    connected = true;
    await findCoordinatorAgain(holder);
    expect(lookups).toBe(1);
    expect(holder.coordinator).toBe('new');
  });

  it('counts connection failures, a missing broker and a moved coordinator as a lost coordinator, not other errors', () => {
    expect(lostCoordinator(refused())).toBe(true);
    expect(lostCoordinator({ name: 'KafkaJSNumberOfRetriesExceeded', cause: { name: 'KafkaJSBrokerNotFound' } })).toBe(true);
    expect(lostCoordinator({ name: 'KafkaJSProtocolError', type: 'NOT_COORDINATOR_FOR_GROUP' })).toBe(true);
    expect(lostCoordinator({ name: 'KafkaJSProtocolError', type: 'REBALANCE_IN_PROGRESS' })).toBe(false);
    expect(lostCoordinator(new Error('boom'))).toBe(false);
  });
});
