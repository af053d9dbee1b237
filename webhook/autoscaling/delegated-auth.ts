/**
 * What an aggregated API server needs from the cluster to trust the
 * apiserver's proxied requests: the requestheader CA and allowed names (the
 * extension-apiserver-authentication ConfigMap in kube-system), and
 * SubjectAccessReviews for the user named in the headers.
 */
import type { Logger } from 'pino';
import type { Cluster } from '../../shared/kube/cluster.js';
import type { RequestIdentity } from './external-metrics-api.js';

export interface RequestHeaderAuth {
  ca: Buffer;
  allowedNames: string[];
}

export async function readRequestHeaderAuth(cluster: Cluster, log: Logger): Promise<RequestHeaderAuth | null> {
  const cm = await cluster.clients.core.readNamespacedConfigMap({ name: 'extension-apiserver-authentication', namespace: 'kube-system' });
  const ca = cm.data?.['requestheader-client-ca-file'];
  if (!ca) {
    log.warn('the apiserver has no requestheader CA (no aggregation layer): the external metrics API refuses every request');
    return null;
  }
  let allowedNames: string[] = [];
  try {
    allowedNames = JSON.parse(cm.data?.['requestheader-allowed-names'] ?? '[]') as string[];
  } catch {
    // an unreadable list means no restriction beyond the CA, as in the apiserver
  }
  return { ca: Buffer.from(ca), allowedNames };
}

/** SubjectAccessReviews, with answers cached for 10 s per identity and resource. */
export function subjectAccessReviewer(cluster: Cluster): (who: RequestIdentity, namespace: string, metric: string) => Promise<boolean> {
  const api = cluster.clients.authorization;
  const cache = new Map<string, { allowed: boolean; until: number }>();
  return async (who, namespace, metric) => {
    const key = JSON.stringify([who.user, who.groups, namespace, metric]);
    const hit = cache.get(key);
    if (hit && hit.until > Date.now()) return hit.allowed;
    const review = await api.createSubjectAccessReview({
      body: {
        apiVersion: 'authorization.k8s.io/v1',
        kind: 'SubjectAccessReview',
        spec: {
          user: who.user,
          groups: who.groups,
          resourceAttributes: { group: 'external.metrics.k8s.io', version: 'v1beta1', resource: metric, namespace, verb: 'get' },
        },
      },
    });
    const allowed = review.status?.allowed === true;
    cache.set(key, { allowed, until: Date.now() + 10_000 });
    return allowed;
  };
}
