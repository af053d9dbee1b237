import type { V1Service } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { openCluster, type Cluster } from './cluster.js';
import { informerSource, type ObjectSource } from './object-source.js';

/** Every Service in the cluster, kept current by a watch (on `cluster`, or one opened for it). */
export async function watchAllServices(log: Logger, cluster?: Cluster): Promise<ObjectSource<V1Service>> {
  const c = cluster ?? (await openCluster());
  return informerSource<V1Service>(c, '/api/v1/services', () => c.clients.core.listServiceForAllNamespaces(), log);
}
