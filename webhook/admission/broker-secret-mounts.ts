/**
 * kueuer.io/backend naming several Secrets: the first is the sidecar's
 * environment (envFrom); the others are mounted as they are, one directory
 * each, named in KUEUER_BROKER_SECRET_DIRS, where the sidecar reads them by
 * their shape (shared/broker-secret/). Their keys (ca.crt, sasl.jaas.config)
 * are not valid variable names on every Kubernetes, so not envFrom.
 */
import type { V1Container, V1Pod, V1Volume } from '@kubernetes/client-node';

/** Where the sidecar finds the broker Secrets after the first (shared/broker-secret/env.ts): one directory per Secret, named after it. */
export const BROKER_SECRETS_DIR = '/etc/kueuer/broker';

/** The pod's volumes of the Secrets after the first that kueuer.io/backend names (their keys, e.g. ca.crt, are not all valid variable names). */
export function brokerSecretVolumes(secrets: readonly string[]): V1Volume[] {
  return secrets.map((secretName, i) => ({ name: `kueuer-broker-${i + 1}`, secret: { secretName } }));
}

/**
 * A volume of the pod's own with the name Kueuer gives a broker Secret's
 * volume: merging the two would give one volume of two types, which the API
 * refuses with a message that names neither. Ours from an earlier admission
 * (that Secret, nothing else) is not a collision.
 */
export function brokerSecretVolumeCollision(pod: V1Pod, secrets: readonly string[]): string | undefined {
  for (const ours of brokerSecretVolumes(secrets)) {
    const theirs = pod.spec?.volumes?.find((v) => v.name === ours.name);
    if (theirs && !(Object.keys(theirs).length === 2 && theirs.secret?.secretName === ours.secret!.secretName)) {
      return `the pod's own volume ${ours.name} has the name Kueuer gives the Secret ${ours.secret!.secretName} of kueuer.io/backend (mounted at ${BROKER_SECRETS_DIR}/${ours.secret!.secretName}); rename that volume`;
    }
  }
  return undefined;
}

export function withMountedSecrets(sidecar: V1Container, secrets: readonly string[]): V1Container {
  if (secrets.length === 0) return sidecar;
  const dirs = secrets.map((name) => `${BROKER_SECRETS_DIR}/${name}`);
  return {
    ...sidecar,
    env: [...(sidecar.env ?? []), { name: 'KUEUER_BROKER_SECRET_DIRS', value: dirs.join(',') }],
    volumeMounts: brokerSecretVolumes(secrets).map((v, i) => ({ name: v.name, mountPath: dirs[i]!, readOnly: true })),
  };
}
