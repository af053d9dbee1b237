/**
 * keda mode with `--cert-source self`: KEDA's metrics-api scaler verifies the
 * webhook's /backlog with ca.crt of the Secret kueuer-backlog-tls in KEDA's
 * namespace (the ClusterTriggerAuthentication kueuer-backlog). The
 * self-issuer keeps that Secret in step after every pass:
 *   - ca.crt is the CA bundle the webhook configuration gets (the old and the
 *     new CA during a rotation), so KEDA verifies either serving certificate;
 *   - tls.crt/tls.key: KEDA's authMode tls refuses to run without a client
 *     pair, but /backlog asks for no client certificate, so the pair is never
 *     sent. It only has to load (a matching, unexpired pair). One already there
 *     (install.sh's, or issued earlier) is kept; otherwise one is issued by the
 *     current CA. Keeping it means a CA rotation changes ca.crt alone.
 * Other keys, labels and the Secret's type are kept. Writes carry the
 * resourceVersion read (a 409 means another replica wrote: read again).
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import type { CoreV1Api, V1Secret } from '@kubernetes/client-node';
import { retryOnConflict, statusOf } from '../../shared/kube/cluster.js';
import type { SecretRef } from './cert-secret.js';
import type { KeyPair } from './issue.js';

export const KEDA_SECRET_KEYS = { bundle: 'ca.crt', cert: 'tls.crt', key: 'tls.key' } as const;
const MAX_CONFLICTS = 5;

const decode = (data: Record<string, string> | undefined, key: string) => Buffer.from(data?.[key] ?? '', 'base64').toString('utf8');
const encode = (text: string) => Buffer.from(text, 'utf8').toString('base64');

/** The client pair in `data`, when it loads and is not expired at `now`. Pure. */
export function usableClientPair(data: Record<string, string> | undefined, now: number): KeyPair | null {
  const pair = { cert: decode(data, KEDA_SECRET_KEYS.cert), key: decode(data, KEDA_SECRET_KEYS.key) };
  try {
    const cert = new X509Certificate(pair.cert);
    if (Date.parse(cert.validTo) <= now) return null;
    return cert.checkPrivateKey(createPrivateKey(pair.key)) ? pair : null;
  } catch {
    return null;
  }
}

/** The Secret's data with `bundlePem` and `client`, other keys kept. Pure. */
export function kedaSecretData(current: Record<string, string> | undefined, bundlePem: string, client: KeyPair): Record<string, string> {
  return {
    ...current,
    [KEDA_SECRET_KEYS.bundle]: encode(bundlePem),
    [KEDA_SECRET_KEYS.cert]: encode(client.cert),
    [KEDA_SECRET_KEYS.key]: encode(client.key),
  };
}

const sameData = (a: Record<string, string>, b: Record<string, string> | undefined) =>
  Object.keys(a).length === Object.keys(b ?? {}).length && Object.entries(a).every(([k, v]) => b?.[k] === v);

async function readSecret(core: CoreV1Api, ref: SecretRef): Promise<V1Secret | null> {
  try {
    return await core.readNamespacedSecret(ref);
  } catch (err) {
    if (statusOf(err) === 404) return null;
    throw new Error(`cannot read Secret ${ref.namespace}/${ref.name}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Makes `ref` hold `bundlePem` and a usable client pair (`issueClient` when there is none).
 * Returns what it did; throws when the apiserver refuses (e.g. no such namespace, no RBAC).
 */
export async function syncKedaCaSecret(
  core: CoreV1Api,
  ref: SecretRef,
  bundlePem: string,
  issueClient: () => Promise<KeyPair>,
): Promise<'unchanged' | 'created' | 'updated'> {
  const secretName = `${ref.namespace}/${ref.name}`;
  const attempt = async (): Promise<'unchanged' | 'created' | 'updated'> => {
    const current = await readSecret(core, ref);
    const client = usableClientPair(current?.data, Date.now()) ?? (await issueClient());
    const data = kedaSecretData(current?.data, bundlePem, client);
    if (current && sameData(data, current.data)) return 'unchanged';
    const body: V1Secret = {
      apiVersion: 'v1',
      kind: 'Secret',
      type: current?.type ?? 'Opaque',
      metadata: {
        ...ref,
        labels: { ...current?.metadata?.labels, 'app.kubernetes.io/name': 'kueuer', 'app.kubernetes.io/managed-by': 'kueuer-webhook' },
        ...(current?.metadata?.annotations ? { annotations: current.metadata.annotations } : {}),
        ...(current?.metadata?.resourceVersion ? { resourceVersion: current.metadata.resourceVersion } : {}),
      },
      data,
    };
    try {
      if (current) await core.replaceNamespacedSecret({ ...ref, body });
      else await core.createNamespacedSecret({ namespace: ref.namespace, body });
    } catch (err) {
      if (statusOf(err) === 409) throw err;
      throw new Error(`cannot write Secret ${secretName}: ${(err as Error).message}`, { cause: err });
    }
    return current ? 'updated' : 'created';
  };
  try {
    return await retryOnConflict(attempt, { retries: MAX_CONFLICTS });
  } catch (err) {
    if (statusOf(err) === 409) throw new Error(`cannot write Secret ${secretName}: ${(err as Error).message}`, { cause: err });
    throw err;
  }
}
