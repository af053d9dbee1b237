/**
 * Whether the cluster runs native sidecars: Kubernetes 1.29 turned the
 * SidecarContainers feature on by default (beta), 1.33 made it GA.
 */
import type { Logger } from 'pino';
import type { Cluster } from '../shared/kube/cluster.js';

export function supportsNativeSidecars(major: string, minor: string): boolean {
  const ma = Number.parseInt(major, 10);
  const mi = Number.parseInt(minor, 10); // managed clusters report minors such as "29+"
  return ma > 1 || (ma === 1 && mi >= 29);
}

/** Asks the apiserver for its version; a cluster that cannot be asked gets classic sidecars. */
export async function detectNativeSidecars(cluster: Cluster, log: Logger): Promise<boolean> {
  try {
    const info = await cluster.clients.version.getCode();
    const native = supportsNativeSidecars(info.major, info.minor);
    log.info({ version: info.gitVersion, nativeSidecars: native }, 'detected the cluster version');
    return native;
  } catch (err) {
    log.warn({ err: (err as Error).message }, 'could not read the cluster version; injecting classic sidecars (set --native-sidecars to choose)');
    return false;
  }
}
