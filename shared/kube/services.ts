import type { V1Service } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { informerSource, kubeConfig, type ObjectSource } from './object-source.js';

/** Every Service in the cluster, kept current by a watch. */
export async function watchAllServices(log: Logger): Promise<ObjectSource<V1Service>> {
  const { CoreV1Api } = await import('@kubernetes/client-node');
  const core = (await kubeConfig()).makeApiClient(CoreV1Api);
  return informerSource<V1Service>('/api/v1/services', () => core.listServiceForAllNamespaces(), log);
}
