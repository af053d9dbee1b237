import type { Producer } from 'kafkajs';
import type { OutgoingRecord } from './records.js';

interface Queued extends OutgoingRecord {
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * Sends the records published within one tick together (kafkajs has no
 * linger of its own): each publish waits only for the tick, and a busy
 * responder or sidecar sends one produce request per partition per tick
 * instead of one per record.
 *
 * One request per partition, settled by that request alone: a partition's
 * records are confirmed only by its leader's answer for them, and a failure
 * rejects only them. Handing kafkajs 2.2.4 several partitions in one send lost
 * confirmed records when a leader moved (issue 21): it keeps each broker's
 * answer across its retries and, when a failed partition's leadership has
 * moved to a broker that already answered for another partition, resolves
 * without ever sending it. And a batch's failure rejected records another
 * broker had written, so they were sent again. Records without a partition
 * (none from this transport, which always names one once it has the topic's
 * metadata) go one per request, since kafkajs may place them anywhere.
 */
export class TickBatcher {
  private queued: Queued[] = [];
  private scheduled = false;

  /**
   * `producer` is read at each flush (the transport may renew it); `onFailure` sees each failed
   * send's error after its records are rejected.
   */
  constructor(
    private readonly producer: () => Producer,
    private readonly onFailure: (err: unknown) => void = () => undefined,
  ) {}

  send(topic: string, message: Queued['message']): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queued.push({ topic, message, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    const batch = this.queued;
    this.queued = [];
    for (const group of byPartition(batch)) {
      this.producer()
        .sendBatch({ acks: -1, topicMessages: [{ topic: group[0]!.topic, messages: group.map((q) => q.message) }] })
        .then(
          () => group.forEach((q) => q.resolve()),
          (err: unknown) => {
            group.forEach((q) => q.reject(err));
            this.onFailure(err);
          },
        );
    }
  }
}

/** The records of each (topic, partition), in order; a record without a partition alone. */
export function byPartition<T extends OutgoingRecord>(records: T[]): T[][] {
  const groups = new Map<string, T[]>();
  const alone: T[][] = [];
  for (const r of records) {
    if (r.message.partition === undefined) {
      alone.push([r]);
      continue;
    }
    const key = `${r.message.partition} ${r.topic}`;
    const group = groups.get(key);
    if (group) group.push(r);
    else groups.set(key, [r]);
  }
  return [...groups.values(), ...alone];
}
