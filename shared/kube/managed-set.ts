/**
 * One way to keep a set of Kubernetes objects in step with what Kueuer wants:
 * each run diffs the desired objects against the watched ones that are ours
 * (by namespace/name), creates what is missing, replaces what drifted (by a
 * fingerprint of the fields Kueuer sets, so server-side defaults are not
 * drift) and removes what is no longer wanted. Runs are serialized, follow
 * every change of their sources, and repeat on a resync timer so a failed
 * write is retried even when nothing changes.
 */
import type { KubernetesObject } from '@kubernetes/client-node';
import { SerialRuns } from '../serial.js';
import type { ObjectSource } from './object-source.js';

/** Writes objects of one kind; `source` watches the ones that are ours (by label). */
export interface ManagedStore<T extends KubernetesObject> {
  readonly source: ObjectSource<T>;
  create(object: T): Promise<void>;
  replace(object: T, resourceVersion: string | undefined): Promise<void>;
  remove(namespace: string, name: string): Promise<void>;
}

/** A desired object, with what the hooks need to report on it. */
export interface Wanted<T, C> {
  object: T;
  context: C;
}

export interface ManagedSetSpec<T extends KubernetesObject, C> {
  store: ManagedStore<T>;
  /** What should exist now, in the order to write it. */
  desired(): Promise<Iterable<Wanted<T, C>>>;
  /** The fields Kueuer sets: a stored object with another fingerprint is replaced. */
  fingerprint(object: T): string;
  /** After a create or replace (not when nothing changed). */
  written?(change: 'created' | 'replaced', wanted: Wanted<T, C>): Promise<void>;
  writeFailed(err: unknown, wanted: Wanted<T, C>, existed: boolean, key: string): Promise<void> | void;
  removed?(stale: T, key: string): Promise<void> | void;
  removeFailed(err: unknown, stale: T, key: string): void;
  /** A run that threw (its hooks' own failures included). */
  runFailed(err: unknown): void;
  /** False on a replica that is not the leader: desired() still runs (its side results are read), nothing is written. */
  active?(): boolean;
}

export function objectKey(o: KubernetesObject): string {
  return `${o.metadata?.namespace}/${o.metadata?.name}`;
}

/** `o` with the resourceVersion a replace must carry. */
export function withResourceVersion<T extends KubernetesObject>(o: T, resourceVersion: string | undefined): T {
  return { ...o, metadata: { ...o.metadata, resourceVersion } };
}

export class ManagedSet<T extends KubernetesObject, C> {
  private readonly runs: SerialRuns;
  private resync: NodeJS.Timeout | undefined;

  constructor(private readonly spec: ManagedSetSpec<T, C>) {
    this.runs = new SerialRuns((err) => spec.runFailed(err));
  }

  /** Runs one reconcile after any in progress; resolves (never rejects) when it has run. */
  reconcile(): Promise<void> {
    return this.runs.run(() => this.once());
  }

  /** Reconciles on every change of `sources` and of the store, and every `resyncMs`; resolves after the first run. */
  start(sources: ReadonlyArray<ObjectSource<unknown>>, resyncMs: number): Promise<void> {
    for (const source of [...sources, this.spec.store.source]) source.onChange(() => void this.reconcile());
    const first = this.reconcile();
    this.resync = setInterval(() => void this.reconcile(), resyncMs);
    this.resync.unref();
    return first;
  }

  /** Stops the resync, waits for the runs asked for and stops watching the store. */
  async stop(): Promise<void> {
    clearInterval(this.resync);
    await this.runs.idle();
    await this.spec.store.source.stop();
  }

  private async once(): Promise<void> {
    const { spec } = this;
    const desired = [...(await spec.desired())];
    if (spec.active && !spec.active()) return;
    const current = new Map(spec.store.source.list().map((o) => [objectKey(o), o]));
    for (const wanted of desired) {
      const key = objectKey(wanted.object);
      const have = current.get(key);
      current.delete(key);
      try {
        if (!have) {
          await spec.store.create(wanted.object);
          await spec.written?.('created', wanted);
        } else if (spec.fingerprint(have) !== spec.fingerprint(wanted.object)) {
          await spec.store.replace(wanted.object, have.metadata?.resourceVersion);
          await spec.written?.('replaced', wanted);
        }
      } catch (err) {
        await spec.writeFailed(err, wanted, have !== undefined, key);
      }
    }
    for (const [key, stale] of current) {
      try {
        await spec.store.remove(stale.metadata!.namespace!, stale.metadata!.name!);
        await spec.removed?.(stale, key);
      } catch (err) {
        spec.removeFailed(err, stale, key);
      }
    }
  }
}
