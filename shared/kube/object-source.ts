/**
 * A live, cached set of Kubernetes objects: the seam between Kueuer's pure
 * reconcilers and the cluster. Production uses informers from
 * @kubernetes/client-node (`informerSource`); unit tests use
 * `StaticObjectSource`.
 */
import type { KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { backoff, retry, type BackoffOptions } from '../retry.js';
import { statusOf, type Cluster } from './cluster.js';

export interface ObjectSource<T> {
  list(): readonly T[];
  /** Called after every change, coalesced to at most once per tick. */
  onChange(listener: () => void): void;
  stop(): Promise<void>;
}

export class StaticObjectSource<T> implements ObjectSource<T> {
  private items: T[] = [];
  private readonly listeners: Array<() => void> = [];

  constructor(items: T[] = []) {
    this.items = items;
  }

  list(): readonly T[] {
    return this.items;
  }

  set(items: T[]): void {
    this.items = items;
    for (const l of this.listeners) l();
  }

  onChange(listener: () => void): void {
    this.listeners.push(listener);
  }

  async stop(): Promise<void> {}
}

/**
 * The wait before restarting a failed watch: a fixed 2 s. A restart whose
 * list or watch fails again reports another error, so this repeats until
 * the watch is back.
 */
const WATCH_RESTART: BackoffOptions = { baseMs: 2000, capMs: 2000 };

/** How long the first list may keep failing with a transient status before start-up fails. */
const FIRST_LIST_PATIENCE_MS = 30_000;

const TRANSIENT_STATUSES = new Set([429, 500, 502, 503, 504]);

/** 429, 500, 502, 503 and 504 from the API (client-node's ApiException carries `code`); anything else fails at once. */
export function isTransientApiError(err: unknown): boolean {
  const code = statusOf(err);
  return code !== undefined && TRANSIENT_STATUSES.has(code);
}

type ListFn<T extends KubernetesObject> = () => Promise<{ items: T[]; metadata?: { resourceVersion?: string } }>;

/**
 * An informer (list, then watch, restarting after errors) as an ObjectSource.
 * Resolves once the first list has arrived, so callers start from the truth.
 */
export async function informerSource<T extends KubernetesObject>(
  cluster: Cluster,
  path: string,
  list: ListFn<T>,
  log: Logger,
  labelSelector?: string,
): Promise<ObjectSource<T>> {
  // Fail start-up with a clear reason when the API cannot be read at all,
  // instead of running on an empty cache.
  // A transient refusal (429 "storage is (re)initializing" right after a CRD is
  // created, or a 5xx while the apiserver restarts) is waited out, up to 30 s.
  try {
    await retry(list, {
      baseMs: 250,
      capMs: 2000,
      until: Date.now() + FIRST_LIST_PATIENCE_MS,
      retryable: isTransientApiError,
      onRetry: (err, attempt, waitMs) => log.warn({ path, attempt, waitMs, err: (err as Error).message.split('\n')[0] }, 'listing failed; retrying'),
    });
  } catch (err) {
    throw new Error(`cannot list ${path} from the Kubernetes API at ${cluster.server}: ${(err as Error).message}`);
  }
  const informer = cluster.informer<T>(path, list, labelSelector);
  const listeners: Array<() => void> = [];
  let scheduled = false;
  const changed = (): void => {
    if (scheduled) return;
    scheduled = true;
    queueMicrotask(() => {
      scheduled = false;
      for (const l of listeners) l();
    });
  };
  for (const verb of ['add', 'update', 'delete'] as const) informer.on(verb, changed);
  let stopped = false;
  informer.on('error', (err: unknown) => {
    if (stopped) return;
    log.warn({ err: (err as Error)?.message, path }, 'watch failed; restarting in 2 s');
    setTimeout(
      () => {
        if (!stopped) informer.start().catch(() => undefined);
      },
      backoff(WATCH_RESTART, 1),
    ).unref();
  });
  await informer.start();
  return {
    list: () => informer.list(),
    onChange: (l) => listeners.push(l),
    stop: async () => {
      stopped = true;
      await informer.stop();
    },
  };
}

/** informerSource bound to one Cluster and log: what a controller opening several watches holds. */
export function watcher(cluster: Cluster, log: Logger) {
  return <T extends KubernetesObject>(path: string, list: ListFn<T>, labelSelector?: string): Promise<ObjectSource<T>> =>
    informerSource(cluster, path, list, log, labelSelector);
}
