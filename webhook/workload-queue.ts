/**
 * The default queue of a pod: named after the workload that owns it, so all
 * replicas of a Deployment share one queue. At admission a Deployment's pod
 * has only `generateName` and an owner ReplicaSet named `<deployment>-<hash>`;
 * the hash is the pod's `pod-template-hash` label. Queue names carry the
 * namespace, so two namespaces never share a queue.
 */
import { createHash } from 'node:crypto';
import type { V1ObjectMeta } from '@kubernetes/client-node';

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
  return (meta.generateName ?? 'pod').replace(/-+$/, '') || 'pod';
}

const MAX_QUEUE = 200;

export function qualifiedQueueName(namespace: string, name: string): string {
  const full = `${namespace}.${name}`;
  if (full.length <= MAX_QUEUE) return full;
  const digest = createHash('sha256').update(full).digest('hex').slice(0, 16);
  return `${full.slice(0, MAX_QUEUE - 17)}-${digest}`;
}
