/**
 * The default queue of a pod: named after the workload that owns it, so all
 * replicas of a Deployment share one queue. At admission a Deployment's pod
 * has only `generateName` and an owner ReplicaSet named `<deployment>-<hash>`;
 * the hash is the pod's `pod-template-hash` label.
 */
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
