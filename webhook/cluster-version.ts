/**
 * Whether the cluster runs native sidecars: Kubernetes 1.29 turned the
 * SidecarContainers feature on by default (beta), 1.33 made it GA.
 */
import type { Logger } from 'pino';

export function supportsNativeSidecars(major: string, minor: string): boolean {
  const ma = Number.parseInt(major, 10);
  const mi = Number.parseInt(minor, 10); // managed clusters report minors such as "29+"
  return ma > 1 || (ma === 1 && mi >= 29);
}

/** Asks the apiserver for its version; a cluster that cannot be asked gets classic sidecars. */
export async function detectNativeSidecars(log: Logger): Promise<boolean> {
  try {
    // Loaded on demand: the other commands never pay for the Kubernetes client.
    const { KubeConfig, VersionApi } = await import('@kubernetes/client-node');
    const kc = new KubeConfig();
    kc.loadFromDefault();
    const info = await kc.makeApiClient(VersionApi).getCode();
    const native = supportsNativeSidecars(info.major, info.minor);
    log.info({ version: info.gitVersion, nativeSidecars: native }, 'detected the cluster version');
    return native;
  } catch (err) {
    log.warn({ err: (err as Error).message }, 'could not read the cluster version; injecting classic sidecars (set --native-sidecars to choose)');
    return false;
  }
}
