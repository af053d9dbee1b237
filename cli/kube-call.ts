/**
 * The CLI's side of reaching the cluster (check, status): the --api-timeout
 * its Cluster (shared/kube/cluster.ts) bounds every call with, an API error
 * reduced to one line, and what to say when the apiserver does not answer.
 * Broker work (not a cluster call) is bounded by withinTimeout.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { durationIn } from '../shared/options.js';
import { KubeTimeoutError, openCluster, type Cluster } from '../shared/kube/cluster.js';
import { settleWithin } from '../shared/timers.js';

/** How long one Kubernetes API call may take, in seconds, unless --api-timeout says otherwise. */
export const DEFAULT_API_TIMEOUT_S = 10;

export const apiTimeoutOption = {
  flag: 'api-timeout',
  env: 'KUEUER_API_TIMEOUT',
  description: 'how long one Kubernetes API call may take before it is reported as not answering (10s, 1m; a bare number is seconds)',
  defaultValue: String(DEFAULT_API_TIMEOUT_S),
  // The duration parser of every option, in seconds.
  parse: (raw: string) => durationIn(1000, 600_000, 's')(raw) / 1000,
};

export { KubeTimeoutError };

/** `work` (broker work: cluster calls are bounded by their Cluster), or a KubeTimeoutError after `seconds`. */
export function withinTimeout<T>(work: Promise<T>, seconds: number): Promise<T> {
  return settleWithin(work, seconds * 1000, () => new KubeTimeoutError(seconds));
}

/** An API error as its HTTP status (when it has one) and the first line of the apiserver's message. */
export function apiError(err: unknown): { code?: number; message: string } {
  const e = err as { code?: number; body?: unknown; message?: string };
  let message = e.message ?? String(err);
  try {
    const body = (typeof e.body === 'string' ? JSON.parse(e.body) : e.body) as { message?: string } | undefined;
    if (body?.message) message = body.message;
  } catch {
    // not JSON: keep the client's message
  }
  return { ...(typeof e.code === 'number' ? { code: e.code } : {}), message: message.split('\n')[0] ?? message };
}

const NO_KUBECONFIG = 'no kubeconfig found';

/** Whether the client fell back to its default server because there is no kubeconfig (per kubeconfigFix). */
export const noKubeconfig = (fix: string): boolean => fix.startsWith(NO_KUBECONFIG);

/**
 * Where the kubeconfig came from; when there is none, the client fell back
 * to `server` (http://localhost:8080), which is what to tell the user.
 */
export function kubeconfigFix(server: string, env: NodeJS.ProcessEnv = process.env, home = homedir()): string {
  if (env.KUBECONFIG) return `check the cluster is up, and that KUBECONFIG (${env.KUBECONFIG}) and its current context name it`;
  if (env.KUBERNETES_SERVICE_HOST) return `running in a pod: check the in-cluster apiserver ${server} is reachable from it`;
  if (existsSync(join(home, '.kube', 'config'))) return `check the cluster is up and the current context of ${join(home, '.kube', 'config')} names it`;
  return `${NO_KUBECONFIG} (KUBECONFIG is unset and there is no ~/.kube/config), so the client fell back to ${server}: set KUBECONFIG to the cluster's kubeconfig`;
}

/**
 * The line saying the apiserver does not answer (timed out, refused, unknown
 * host…). Without a kubeconfig the client's own error is about the fallback
 * server (e.g. skipTLSVerify and http://localhost:8080), so the line names
 * the missing kubeconfig instead.
 */
export function apiDoesNotAnswer(server: string, err: unknown, env: NodeJS.ProcessEnv = process.env, home = homedir()): string {
  if (noKubeconfig(kubeconfigFix(server, env, home))) {
    return `no kubeconfig: set KUBECONFIG to the cluster's kubeconfig, or create ~/.kube/config (KUBECONFIG is unset and there is no ~/.kube/config, so the client fell back to ${server}, which does not answer)`;
  }
  return err instanceof KubeTimeoutError
    ? `Kubernetes API at ${server} does not answer within ${err.seconds} s`
    : `Kubernetes API at ${server} does not answer: ${apiError(err).message}`;
}

/** The command's Cluster: every call bounded by --api-timeout (seconds). Once per command. */
export function openCommandCluster(apiTimeoutS: number): Promise<Cluster> {
  return openCluster({ timeoutMs: apiTimeoutS * 1000 });
}
