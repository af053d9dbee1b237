import type { Producer } from 'kafkajs';
import { groupByTopic, type OutgoingRecord } from './records.js';

interface Queued extends OutgoingRecord {
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * Sends the records published within one tick in one request (kafkajs has
 * no linger of its own): each publish waits only for the tick, and a busy
 * responder or sidecar sends one produce request per tick instead of one per
 * record.
 */
export class TickBatcher {
  private queued: Queued[] = [];
  private scheduled = false;

  constructor(private readonly producer: Producer) {}

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
    this.producer.sendBatch({ acks: -1, topicMessages: groupByTopic(batch) }).then(
      () => batch.forEach((q) => q.resolve()),
      (err: unknown) => batch.forEach((q) => q.reject(err)),
    );
  }
}
