/**
 * What `kueuer webhook` checks before it starts: its TLS files first (they
 * need no cluster), then that a Kubernetes configuration exists and its API
 * server answers. Each failure is one line naming what is wrong and what to do.
 */
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { describeNetworkCause } from '../shared/connect-errors.js';
import { KueuerError } from '../shared/errors.js';
import { ApiTimeoutError, openCluster, statusOf, type Cluster } from '../shared/kube/cluster.js';

const SERVICE_ACCOUNT_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';
const API_TIMEOUT_MS = 10_000;

function readOrWhy(path: string): Buffer | string {
  try {
    return readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return 'no such file';
    if (code === 'EACCES' || code === 'EPERM') return `cannot be read (permission denied, ${code})`;
    if (code === 'EISDIR') return 'is a directory, not a file';
    return `cannot be read (${(err as Error).message})`;
  }
}

/** The serving certificate and key exist, are readable, parse as PEM, and belong together. */
export function checkTlsFiles(files: { cert: string; key: string }): void {
  const problems: string[] = [];
  const certRaw = readOrWhy(files.cert);
  const keyRaw = readOrWhy(files.key);
  let cert: X509Certificate | undefined;
  let key: KeyObject | undefined;
  if (typeof certRaw === 'string') problems.push(`--tls-cert (KUEUER_TLS_CERT) ${files.cert}: ${certRaw}`);
  else {
    try {
      cert = new X509Certificate(certRaw);
    } catch {
      problems.push(`--tls-cert (KUEUER_TLS_CERT) ${files.cert}: not a PEM certificate`);
    }
  }
  if (typeof keyRaw === 'string') problems.push(`--tls-key (KUEUER_TLS_KEY) ${files.key}: ${keyRaw}`);
  else {
    try {
      key = createPrivateKey(keyRaw);
    } catch {
      problems.push(`--tls-key (KUEUER_TLS_KEY) ${files.key}: not a PEM private key`);
    }
  }
  if (cert && key && !cert.checkPrivateKey(key)) problems.push(`--tls-key ${files.key} is not the private key of --tls-cert ${files.cert}`);
  if (problems.length > 0) throw new KueuerError('KUEUER_ERR_TLS_FILES', problems.join('; '));
}

/** Where @kubernetes/client-node's loadFromDefault will read its configuration from, in its own order; null when nowhere. */
export function kubeConfigSource(env: Record<string, string | undefined>, fileExists: (path: string) => boolean = existsSync): string | null {
  const kubeconfig = env.KUBECONFIG;
  if (kubeconfig) {
    const files = kubeconfig.split(delimiter).filter((f) => f !== '');
    const missing = files.filter((f) => !fileExists(f));
    if (missing.length > 0) {
      throw new KueuerError(
        'KUEUER_ERR_KUBERNETES_UNAVAILABLE',
        `KUBECONFIG names ${missing.join(', ')}, which does not exist: point KUBECONFIG at a kubeconfig file, or unset it to use ~/.kube/config or the in-cluster ServiceAccount`,
      );
    }
    return `KUBECONFIG=${kubeconfig}`;
  }
  if (env.HOME && fileExists(join(env.HOME, '.kube', 'config'))) return join(env.HOME, '.kube', 'config');
  if (fileExists(SERVICE_ACCOUNT_TOKEN)) return 'the in-cluster ServiceAccount';
  return null;
}

/**
 * A Kubernetes configuration exists and its API server answers (any HTTP answer counts: permissions are
 * checked later); returns the process's Cluster, opened from that configuration.
 */
export async function checkKubernetesApi(env: Record<string, string | undefined> = process.env): Promise<Cluster> {
  const source = kubeConfigSource(env);
  if (source === null) {
    throw new KueuerError(
      'KUEUER_ERR_KUBERNETES_UNAVAILABLE',
      'no Kubernetes configuration: KUBECONFIG is not set, ~/.kube/config does not exist, and this is not a pod with a ServiceAccount token; set KUBECONFIG to a kubeconfig file, or run the webhook in the cluster with its ServiceAccount (see manifests/)',
    );
  }
  let cluster: Cluster;
  try {
    cluster = await openCluster();
  } catch (err) {
    throw new KueuerError(
      'KUEUER_ERR_KUBERNETES_UNAVAILABLE',
      `cannot load the Kubernetes configuration from ${source}: ${(err as Error).message.split('\n')[0]}`,
    );
  }
  const server = cluster.server;
  if (!cluster.configured) {
    throw new KueuerError('KUEUER_ERR_KUBERNETES_UNAVAILABLE', `the Kubernetes configuration from ${source} has no current cluster: set its current-context`);
  }
  try {
    await cluster.within(API_TIMEOUT_MS).version.getCode();
  } catch (err) {
    // An HTTP status (e.g. 401, 403) means the server answered.
    if (statusOf(err) !== undefined) return cluster;
    throw new KueuerError(
      'KUEUER_ERR_KUBERNETES_UNAVAILABLE',
      `cannot reach the Kubernetes API at ${server} (from ${source}): ${err instanceof ApiTimeoutError ? `no answer within ${err.seconds} s` : describeNetworkCause(err)}; check that the cluster is running and that this address is right and reachable from here`,
      { cause: err },
    );
  }
  return cluster;
}
