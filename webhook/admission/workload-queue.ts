/**
 * The default queue of a pod: named after the workload users name, so every
 * replica (and every run) shares one queue.
 *
 * - A Deployment's pod has only `generateName` at admission and an owner
 *   ReplicaSet named `<deployment>-<hash>`; the hash is the pod's
 *   `pod-template-hash` label.
 * - A StatefulSet's (or any other controller's) pod: the owner's name.
 * - A Job's pod: the pod alone does not say whether the Job belongs to a
 *   CronJob (which names each run's Job `<cronjob>-<scheduled minute>`) or was
 *   created with `generateName`, so the webhook reads the Job's metadata
 *   through the API, once per Job, within a bound (`JobWorkloads`).
 */
import type { V1ObjectMeta, V1OwnerReference } from '@kubernetes/client-node';
import { statusOf, type Cluster } from '../../shared/kube/cluster.js';
import { settleWithin } from '../../shared/timers.js';

export function owningWorkloadName(meta: V1ObjectMeta): string {
  const owner = meta.ownerReferences?.find((o) => o.controller) ?? meta.ownerReferences?.[0];
  if (owner) {
    const hash = meta.labels?.['pod-template-hash'];
    if (owner.kind === 'ReplicaSet' && hash && owner.name.endsWith(`-${hash}`)) {
      return owner.name.slice(0, -(hash.length + 1));
    }
    return owner.name;
  }
  if (meta.name) return meta.name;
  return trimGenerateName(meta.generateName) || 'pod';
}

function trimGenerateName(generateName: string | undefined): string {
  return (generateName ?? '').replace(/-+$/, '');
}

/** The pod's controlling Job (batch/v1), whose own owner decides the queue; undefined for any other pod. */
export function jobOwner(meta: V1ObjectMeta): V1OwnerReference | undefined {
  const owner = meta.ownerReferences?.find((o) => o.controller) ?? meta.ownerReferences?.[0];
  return owner?.kind === 'Job' && owner.apiVersion.startsWith('batch/') ? owner : undefined;
}

/**
 * The workload a Job's pods belong to, from the Job's metadata: its CronJob,
 * else the prefix it was generated from, else its own name.
 */
export function workloadOfJob(job: V1ObjectMeta): string {
  const owner = job.ownerReferences?.find((o) => o.controller) ?? job.ownerReferences?.[0];
  if (owner?.kind === 'CronJob') return owner.name;
  return trimGenerateName(job.generateName) || job.name || 'job';
}

/** What the lookup of a pod's Job gave: the workload's name, or why there is none. */
export type JobWorkload = { name: string } | { problem: string };

/** Reads a Job's metadata; rejects with the API's error (its `code` is the HTTP status). */
export type JobReader = (namespace: string, name: string) => Promise<V1ObjectMeta>;

/** How long one admission may wait for the Job: well inside the webhook's 5 s timeoutSeconds. */
export const JOB_LOOKUP_TIMEOUT_MS = 2000;
const CACHE_SIZE = 1000;

/**
 * Resolves the workload of Job-owned pods with one API read per Job (cached
 * by the Job's uid, concurrent pods of one Job share the read). A read that
 * fails or takes longer than `timeoutMs` gives a problem, never a guess: a
 * guessed name is the per-run queue this exists to avoid. Failures are not
 * cached, so the Job controller's retry of the pod asks again.
 */
export class JobWorkloads {
  private readonly cache = new Map<string, Promise<JobWorkload>>();

  constructor(
    private readonly read: JobReader,
    private readonly timeoutMs = JOB_LOOKUP_TIMEOUT_MS,
  ) {}

  resolve(namespace: string, owner: V1OwnerReference): Promise<JobWorkload> {
    const key = `${namespace}/${owner.name}/${owner.uid}`;
    const cached = this.cache.get(key);
    if (cached) return cached;
    const pending = this.lookup(namespace, owner).then((result) => {
      if ('problem' in result) this.cache.delete(key);
      return result;
    });
    this.cache.set(key, pending);
    if (this.cache.size > CACHE_SIZE) this.cache.delete(this.cache.keys().next().value!);
    return pending;
  }

  private async lookup(namespace: string, owner: V1OwnerReference): Promise<JobWorkload> {
    try {
      const job = await settleWithin(this.read(namespace, owner.name), this.timeoutMs, () => new LookupTimeout());
      if (owner.uid && job.uid && job.uid !== owner.uid) return { problem: 'the Job of that name is not the one that owns the pod (it was re-created)' };
      return { name: workloadOfJob(job) };
    } catch (err) {
      return { problem: describeFailure(err, this.timeoutMs) };
    }
  }
}

class LookupTimeout extends Error {}

function describeFailure(err: unknown, timeoutMs: number): string {
  if (err instanceof LookupTimeout) return `reading the Job: the API did not answer within ${timeoutMs} ms`;
  const code = statusOf(err);
  if (code === 404) return 'the Job does not exist';
  if (code === 401 || code === 403) return `the webhook may not read Jobs (HTTP ${code}); grant its ServiceAccount get on jobs.batch`;
  const message = err instanceof Error ? (err.message.split('\n')[0] ?? '') : String(err);
  return `reading the Job failed: ${typeof code === 'number' ? `HTTP ${code}: ` : ''}${message}`;
}

/** Reads Jobs through the process's Cluster (with the webhook's own credentials). */
export function clusterJobReader(cluster: Cluster): JobReader {
  return async (namespace, name) => (await cluster.clients.batch.readNamespacedJob({ namespace, name })).metadata ?? {};
}
