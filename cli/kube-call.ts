/**
 * Bounded Kubernetes API calls for the CLI's read-only commands (check,
 * status): an apiserver that accepts the connection but never answers ends
 * the call with a KubeTimeoutError instead of hanging the command, and an
 * API error is reduced to one line.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { durationIn } from '../shared/options.js';
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

/** A call that did not end within its time (a Kubernetes API call, or broker work in kueuer status). */
export class KubeTimeoutError extends Error {
  constructor(readonly seconds: number) {
    super(`no answer within ${seconds} s`);
  }
}

/** `work`, or a KubeTimeoutError after `seconds`. */
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
