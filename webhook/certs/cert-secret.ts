/**
 * The Secret that holds the self-issued certificates (kueuer-system/
 * kueuer-webhook-tls by default), shared by every webhook replica. Writes
 * carry the resourceVersion they were planned from, so when two replicas
 * renew at once the apiserver keeps one and refuses the other with 409; the
 * loser re-reads and adopts the winner's certificates.
 */
import type { CoreV1Api, V1Secret } from '@kubernetes/client-node';
import { statusOf } from '../../shared/kube/cluster.js';
import type { StoredCerts } from './rotation-plan.js';
import { splitPem } from '../../shared/pem.js';

/**
 * The Secret's keys. ca.crt is every CA a client must trust (the new and the old one during a CA
 * rotation), as Prometheus's scrape config and KEDA read it; the signing CA is ca-signer.crt with ca.key.
 */
export const CERT_KEYS = { caCert: 'ca-signer.crt', caKey: 'ca.key', bundle: 'ca.crt', cert: 'tls.crt', key: 'tls.key' } as const;

export interface SecretRef {
  namespace: string;
  name: string;
}

/** The Secret as read: its certificates (null when absent or incomplete) and the version a write must match. */
export interface CertSecret {
  stored: StoredCerts | null;
  /** Absent when the Secret does not exist (the write is then a create). */
  resourceVersion?: string;
  /** Kept on replace (a Secret's type is immutable): cert-manager's are kubernetes.io/tls, install.sh's Opaque. */
  type?: string;
}

export class WriteConflict extends Error {
  constructor(ref: SecretRef) {
    super(`Secret ${ref.namespace}/${ref.name} changed since it was read`);
    this.name = 'WriteConflict';
  }
}

/** The certificates a Secret's data holds, or null when a key is missing. Pure. */
export function certsFromData(data: Record<string, string> | undefined): StoredCerts | null {
  const text = (key: string) => Buffer.from(data?.[key] ?? '', 'base64').toString('utf8');
  const [caCert, caKey, cert, key] = [text(CERT_KEYS.caCert), text(CERT_KEYS.caKey), text(CERT_KEYS.cert), text(CERT_KEYS.key)];
  if (!caCert || !caKey || !cert || !key) return null;
  const cas = splitPem(text(CERT_KEYS.bundle));
  return { ca: { cert: caCert, key: caKey }, bundle: cas.length > 0 ? cas : [caCert], serving: { cert, key } };
}

/** The Secret's data for `certs`. Pure. */
export function dataFromCerts(certs: StoredCerts): Record<string, string> {
  const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
  return {
    [CERT_KEYS.caCert]: b64(certs.ca.cert),
    [CERT_KEYS.caKey]: b64(certs.ca.key),
    [CERT_KEYS.bundle]: b64(certs.bundle.join('')),
    [CERT_KEYS.cert]: b64(certs.serving.cert),
    [CERT_KEYS.key]: b64(certs.serving.key),
  };
}

export async function readCertSecret(core: CoreV1Api, ref: SecretRef): Promise<CertSecret> {
  let secret: V1Secret;
  try {
    secret = await core.readNamespacedSecret(ref);
  } catch (err) {
    if (statusOf(err) === 404) return { stored: null };
    throw new Error(`cannot read Secret ${ref.namespace}/${ref.name}: ${(err as Error).message}`, { cause: err });
  }
  return {
    stored: certsFromData(secret.data),
    ...(secret.metadata?.resourceVersion ? { resourceVersion: secret.metadata.resourceVersion } : {}),
    ...(secret.type ? { type: secret.type } : {}),
  };
}

/** Creates the Secret, or replaces it if it is still at `read.resourceVersion`; throws WriteConflict when another replica wrote first. */
export async function writeCertSecret(core: CoreV1Api, ref: SecretRef, read: CertSecret, certs: StoredCerts): Promise<void> {
  const body: V1Secret = {
    apiVersion: 'v1',
    kind: 'Secret',
    type: read.type ?? 'Opaque',
    metadata: {
      ...ref,
      labels: { 'app.kubernetes.io/name': 'kueuer', 'app.kubernetes.io/managed-by': 'kueuer-webhook' },
      ...(read.resourceVersion ? { resourceVersion: read.resourceVersion } : {}),
    },
    data: dataFromCerts(certs),
  };
  try {
    if (read.resourceVersion) await core.replaceNamespacedSecret({ ...ref, body });
    else await core.createNamespacedSecret({ namespace: ref.namespace, body });
  } catch (err) {
    if (statusOf(err) === 409) throw new WriteConflict(ref);
    throw new Error(`cannot write Secret ${ref.namespace}/${ref.name}: ${(err as Error).message}`, { cause: err });
  }
}
