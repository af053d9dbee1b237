/**
 * The one way Kueuer reaches Kubernetes (in the spirit of Istio's kube.Client
 * and Knative's injected client set): a process opens its Cluster once (the
 * webhook at start, each CLI command when it runs) and hands it down. It
 * holds the typed API clients, every call of which is bounded: it is aborted
 * (the client's own request, not just the caller's wait) and rejects with an
 * ApiTimeoutError when it has not answered within the Cluster's deadline.
 * Beside it, the one status reading of an API error (`statusOf`) and the one
 * retry on a 409 conflict (`retryOnConflict`, on shared/retry.ts).
 *
 * This is the only module that loads @kubernetes/client-node's code (on
 * demand: the commands that never reach a cluster never pay for it); every
 * other module imports its types only.
 */
import type {
  Informer,
  AdmissionregistrationV1Api,
  ApiregistrationV1Api,
  AppsV1Api,
  AuthorizationV1Api,
  AutoscalingV2Api,
  BatchV1Api,
  ConfigurationOptions,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  DiscoveryV1Api,
  KubeConfig,
  KubernetesObject,
  ObjectCache,
  Observable,
  RequestContext,
  V1MicroTime,
  VersionApi,
} from '@kubernetes/client-node';
import { retry, type BackoffOptions, type RetryOptions } from '../retry.js';

/** The typed clients of the API groups Kueuer uses. */
export interface KubeClients {
  core: CoreV1Api;
  apps: AppsV1Api;
  batch: BatchV1Api;
  discovery: DiscoveryV1Api;
  coordination: CoordinationV1Api;
  admission: AdmissionregistrationV1Api;
  registration: ApiregistrationV1Api;
  authorization: AuthorizationV1Api;
  autoscaling: AutoscalingV2Api;
  custom: CustomObjectsApi;
  version: VersionApi;
}

type ListFn<T extends KubernetesObject> = () => Promise<{ items: T[]; metadata?: { resourceVersion?: string } }>;

export interface Cluster {
  /** The apiserver's URL (what messages name); the client's fallback when no cluster is configured. */
  readonly server: string;
  /** Whether the configuration names a current cluster at all. */
  readonly configured: boolean;
  /** How long one call of `clients` may take. */
  readonly timeoutMs: number;
  /** Every call bounded by `timeoutMs`. */
  readonly clients: KubeClients;
  /** The same clients bounded by another deadline (e.g. the leader Lease's, shorter than the default). */
  within(timeoutMs: number): KubeClients;
  /** An informer (list then watch) on `path`; `list` should be a call of `clients`. */
  informer<T extends KubernetesObject>(path: string, list: ListFn<T>, labelSelector?: string): Informer<T> & ObjectCache<T>;
  /** A Lease's time field. */
  microTime(ms: number): V1MicroTime;
  /** Call options sending a patch as a JSON merge patch. */
  readonly mergePatch: ConfigurationOptions;
}

/** What the webhook allows one API call when nothing shorter is asked for. */
export const DEFAULT_CALL_TIMEOUT_MS = 10_000;

/** Work that did not end within its time: a cluster call (ApiTimeoutError), or other bounded work of the CLI (a broker read). */
export class KubeTimeoutError extends Error {
  constructor(
    readonly seconds: number,
    message = `no answer within ${seconds} s`,
  ) {
    super(message);
  }
}

/** A cluster call that did not answer within its deadline; its request was aborted. */
export class ApiTimeoutError extends KubeTimeoutError {
  constructor(
    readonly what: string,
    readonly ms: number,
  ) {
    super(ms / 1000, `${what} did not answer within ${ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`}`);
    this.name = 'ApiTimeoutError';
  }
}

/** The HTTP status of an API error (client-node's ApiException carries it as `code`), else undefined. */
export function statusOf(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'number' ? code : undefined;
}

/** The client's Observable stub as its call-time middleware returns it: client-node 1.x only calls `toPromise` on it. */
const passOn = <T>(value: T): Observable<T> => ({ toPromise: () => Promise.resolve(value) }) as unknown as Observable<T>;

/** Call-time options handing `signal` to the request, joined with any signal an earlier middleware set. */
function signalOptions(signal: AbortSignal, outer?: ConfigurationOptions): ConfigurationOptions {
  const own = {
    pre: (ctx: RequestContext) => {
      // A fake context (tests) may have no getSignal.
      const earlier = typeof ctx.getSignal === 'function' ? ctx.getSignal() : undefined;
      ctx.setSignal(earlier ? AbortSignal.any([earlier, signal]) : signal);
      return passOn(ctx);
    },
    post: passOn,
  };
  return { ...outer, middleware: [...(outer?.middleware ?? []), own], middlewareMergeStrategy: 'append' };
}

/**
 * Runs one API call with an abort signal (handed to the client as request
 * middleware) and settles within `ms` whatever the call does: on time-out
 * the request is aborted and its late answer, if any, is ignored.
 */
export function callWithin<T>(call: (options: ConfigurationOptions) => Promise<T>, ms: number, what: string, outer?: ConfigurationOptions): Promise<T> {
  const controller = new AbortController();
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      controller.abort();
      reject(new ApiTimeoutError(what, ms));
    }, ms);
    Promise.resolve()
      .then(() => call(signalOptions(controller.signal, outer)))
      .then(resolve, reject)
      .finally(() => clearTimeout(timer));
  });
}

/** `api` with every method call bounded by callWithin (`name` labels the time-out: `CoreV1Api.readNamespacedSecret`). */
export function bounded<T extends object>(api: T, ms: number, name: string): T {
  return new Proxy(api, {
    get(target, prop, receiver) {
      const value: unknown = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function' || typeof prop !== 'string') return value;
      const method = value as (param: unknown, options?: ConfigurationOptions) => Promise<unknown>;
      return (param: unknown, options?: ConfigurationOptions) => callWithin((joined) => method.call(target, param, joined), ms, `${name}.${prop}`, options);
    },
  });
}

/** The wait between tries after a conflict: client-go's DefaultRetry (10 ms steps, a few tries), jittered so writers spread out. */
export const CONFLICT_BACKOFF = { baseMs: 10, capMs: 100, jitter: true } as const;

export interface ConflictRetryOptions extends Pick<RetryOptions, 'onRetry' | 'signal'> {
  /** Tries after the first. */
  retries: number;
  /** What counts as a conflict (default: HTTP 409). */
  isConflict?: (err: unknown) => boolean;
  /** The waits between tries (default CONFLICT_BACKOFF). */
  backoff?: BackoffOptions;
}

/**
 * Re-runs `attempt` (read, decide, write with the resourceVersion read) while
 * it fails with a conflict, up to `retries` more times; rethrows anything
 * else, and the last conflict.
 */
export function retryOnConflict<T>(attempt: () => Promise<T>, o: ConflictRetryOptions): Promise<T> {
  const isConflict = o.isConflict ?? ((err: unknown) => statusOf(err) === 409);
  return retry(attempt, {
    ...(o.backoff ?? CONFLICT_BACKOFF),
    maxAttempts: o.retries + 1,
    retryable: isConflict,
    ...(o.onRetry ? { onRetry: o.onRetry } : {}),
    ...(o.signal ? { signal: o.signal } : {}),
  });
}

type K8s = typeof import('@kubernetes/client-node');

function makeClients(k8s: K8s, kc: KubeConfig, ms: number): KubeClients {
  const make = <A extends object>(Api: new (...args: never[]) => A, name: string): A =>
    bounded(kc.makeApiClient(Api as unknown as Parameters<KubeConfig['makeApiClient']>[0]) as A, ms, name);
  return {
    core: make(k8s.CoreV1Api, 'CoreV1Api'),
    apps: make(k8s.AppsV1Api, 'AppsV1Api'),
    batch: make(k8s.BatchV1Api, 'BatchV1Api'),
    discovery: make(k8s.DiscoveryV1Api, 'DiscoveryV1Api'),
    coordination: make(k8s.CoordinationV1Api, 'CoordinationV1Api'),
    admission: make(k8s.AdmissionregistrationV1Api, 'AdmissionregistrationV1Api'),
    registration: make(k8s.ApiregistrationV1Api, 'ApiregistrationV1Api'),
    authorization: make(k8s.AuthorizationV1Api, 'AuthorizationV1Api'),
    autoscaling: make(k8s.AutoscalingV2Api, 'AutoscalingV2Api'),
    custom: make(k8s.CustomObjectsApi, 'CustomObjectsApi'),
    version: make(k8s.VersionApi, 'VersionApi'),
  };
}

/**
 * Connects from in-cluster config or $KUBECONFIG (client-node's loadFromDefault,
 * which throws on a configuration it cannot read). Once per process.
 */
export async function openCluster(o: { timeoutMs: number } = { timeoutMs: DEFAULT_CALL_TIMEOUT_MS }): Promise<Cluster> {
  const k8s = await import('@kubernetes/client-node');
  const kc = new k8s.KubeConfig();
  kc.loadFromDefault();
  const current = kc.getCurrentCluster();
  const byDeadline = new Map<number, KubeClients>();
  const within = (ms: number): KubeClients => {
    let clients = byDeadline.get(ms);
    if (!clients) byDeadline.set(ms, (clients = makeClients(k8s, kc, ms)));
    return clients;
  };
  return {
    server: current?.server ?? '(no cluster configured)',
    configured: current !== null,
    timeoutMs: o.timeoutMs,
    // Made on first use: without a current cluster the client refuses to make one (and says so then).
    get clients() {
      return within(o.timeoutMs);
    },
    within,
    informer: (path, list, labelSelector) => k8s.makeInformer(kc, path, list, labelSelector),
    microTime: (ms) => new k8s.V1MicroTime(ms),
    mergePatch: k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
  };
}
