/**
 * The ReadSecret the responder passes in a cluster: its CoreV1Api client.
 * RBAC: `get` on `secrets` in each namespace whose Services send callbacks.
 */
import type { V1Secret } from '@kubernetes/client-node';
import type { ReadSecret } from './settings.js';

/** The one CoreV1Api method used, so tests pass a stub. */
export interface SecretReader {
  readNamespacedSecret(ref: { namespace: string; name: string }): Promise<Pick<V1Secret, 'data'>>;
}

export function kubeReadSecret(core: SecretReader): ReadSecret {
  return async (namespace, name) => {
    try {
      return (await core.readNamespacedSecret({ namespace, name })).data ?? {};
    } catch (err) {
      if ((err as { code?: unknown } | null)?.code === 404) return undefined;
      throw err;
    }
  };
}
