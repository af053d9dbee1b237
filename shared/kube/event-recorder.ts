/**
 * The one place Kueuer writes Kubernetes Events. Each is logged as well; a
 * message already recorded for an object and reason is not recorded again,
 * so a steady condition (a refusal seen every reconcile) makes one Event.
 */
import type { CoreV1Api } from '@kubernetes/client-node';
import type { Logger } from 'pino';

/** The object an Event is about. */
export interface EventSubject {
  apiVersion: string;
  kind: string;
  name: string;
  namespace: string;
  uid: string;
}

export type EventType = 'Normal' | 'Warning';

export class EventRecorder {
  /** Last message per object and reason. */
  private readonly last = new Map<string, string>();

  /**
   * `logKey` names the subject (`Kind/namespace/name`) in the log line of each Event; `active`
   * false (a replica that is not the leader) records nothing and remembers nothing.
   */
  constructor(
    private readonly core: CoreV1Api,
    private readonly log: Logger,
    private readonly logKey = 'object',
    private readonly active: () => boolean = () => true,
  ) {}

  async record(subject: EventSubject, type: EventType, reason: string, message: string): Promise<void> {
    if (!this.active()) return;
    const key = `${subject.uid}/${reason}`;
    if (this.last.get(key) === message) return;
    this.last.set(key, message);
    const now = new Date();
    const { namespace, name } = subject;
    try {
      await this.core.createNamespacedEvent({
        namespace,
        body: {
          metadata: { generateName: `${name}.kueuer.`, namespace },
          involvedObject: { apiVersion: subject.apiVersion, kind: subject.kind, name, namespace, uid: subject.uid },
          type,
          reason,
          message,
          source: { component: 'kueuer' },
          firstTimestamp: now,
          lastTimestamp: now,
          count: 1,
        },
      });
    } catch (err) {
      this.log.warn({ err: (err as Error).message, reason }, 'could not record an event');
    }
    (type === 'Warning' ? this.log.warn : this.log.info).call(this.log, { [this.logKey]: `${subject.kind}/${namespace}/${name}`, reason }, message);
  }

  /** Lets the next Event of this reason on this object be recorded even if its message repeats. */
  forget(subject: Pick<EventSubject, 'uid'>, reason: string): void {
    this.last.delete(`${subject.uid}/${reason}`);
  }
}
