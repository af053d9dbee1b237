/**
 * What the webhook does to a pod, as pure functions: decide (skip, refuse or
 * patch) and build the JSON Patch. The patch is the difference, computed by
 * fast-json-patch, between the pod and a copy with the sidecar in place, so
 * pointer escaping and missing parent maps are handled by the library, the
 * user's containers are untouched, and admitting an injected pod again yields
 * an empty patch.
 */
import { randomBytes } from 'node:crypto';
import type { V1Container, V1LifecycleHandler, V1OwnerReference, V1Pod, V1ResourceRequirements, V1Volume } from '@kubernetes/client-node';
import jsonpatch, { type Operation } from 'fast-json-patch';
import { ANNOTATIONS, LABELS, optIn, parsePodSettings, type PodSettings } from '../../shared/annotations.js';
import { defined } from '../../shared/defined.js';
import { quantityValue } from '../../shared/quantity.js';
import { qualifiedQueueName, replyNamespaceProblem } from '../../shared/queue-names.js';
import { sidecarOptions } from '../../sidecar/config.js';
import { brokerSecretVolumeCollision, brokerSecretVolumes, withMountedSecrets } from './broker-secret-mounts.js';
import { jobOwner, owningWorkloadName, type JobWorkload } from './workload-queue.js';

export const SIDECAR_NAME = 'kueuer-sidecar';

export interface InjectionConfig {
  /** The Kueuer image that runs `kueuer sidecar`. */
  image: string;
  /** Kueuer's version, recorded in the status annotation. */
  version: string;
  /** Secret (in the pod's namespace) with KUEUER_BACKEND, when the pod names none. */
  defaultBackendSecret: string;
  /** Whether the cluster runs native sidecars (Kubernetes ≥ 1.29), unless a pod says otherwise. */
  nativeSidecars: boolean;
  /** The sidecar's admin port (/metrics, /healthz, /readyz). */
  adminPort: number;
  /** Namespaces never injected: kube-system and Kueuer's own. */
  excludedNamespaces: readonly string[];
  resources: { cpuRequest: string; memoryRequest: string; cpuLimit?: string; memoryLimit: string };
  /** A new pod's drain token (default: 192 random bits, base64url); a pod injected before keeps its own. */
  newDrainToken?: () => string;
}

export interface InjectionStatus {
  version: string;
  container: string;
  mode: 'native' | 'classic';
  queue: string;
  appPort: number;
}

export type PodDecision =
  /** Allowed unchanged; `warn` when the user asked for injection and should hear why not. */
  | { kind: 'skip'; reason: string; warn: boolean }
  | { kind: 'refuse'; message: string }
  /** `warnings`: for the API client, e.g. the deprecated opt-in annotation. */
  | { kind: 'patch'; patch: Operation[]; status: InjectionStatus; warnings: string[] }
  /** The pod's Job must be read to name its queue: decide again with the result. */
  | { kind: 'lookup-job'; namespace: string; owner: V1OwnerReference };

/** `jobWorkload`: what reading the pod's Job gave, after a `lookup-job` decision. */
export function decidePod(pod: V1Pod, requestNamespace: string | undefined, config: InjectionConfig, jobWorkload?: JobWorkload): PodDecision {
  const namespace = pod.metadata?.namespace || requestNamespace || 'default';
  const annotations = pod.metadata?.annotations;
  const wanted = optIn(pod.metadata?.labels, annotations);
  if (!wanted.ok) return { kind: 'refuse', message: wanted.problems.join('; ') };
  if (!wanted.value.value) return { kind: 'skip', reason: `no ${LABELS.inject}: "true" label`, warn: false };
  const warnings = wanted.value.deprecation ? [wanted.value.deprecation] : [];
  if (config.excludedNamespaces.includes(namespace)) {
    return { kind: 'skip', reason: `kueuer: not injected: namespace ${namespace} is never injected`, warn: true };
  }
  if (pod.spec?.hostNetwork) {
    return { kind: 'skip', reason: "kueuer: not injected: hostNetwork pods share the node's ports, where the sidecar's could collide", warn: true };
  }
  const parsed = parsePodSettings(annotations);
  if (!parsed.ok) return { kind: 'refuse', message: parsed.problems.join('; ') };
  const settings = parsed.value;

  const appPort = resolveAppPort(pod, settings.appPort);
  if (typeof appPort === 'string') return { kind: 'refuse', message: appPort };
  const adminPort = settings.adminPort ?? config.adminPort;
  const collision = adminPortCollision(pod, adminPort, appPort);
  if (collision) return { kind: 'refuse', message: collision };

  const workload = settings.queue ?? defaultWorkload(pod, namespace, jobWorkload);
  if (typeof workload !== 'string') return workload;
  const queue = qualifiedQueueName(namespace, workload);
  const replyProblem = replyNamespaceProblem(queue);
  if (replyProblem) return { kind: 'refuse', message: `${ANNOTATIONS.queue}: ${replyProblem}; ${replyFix(namespace)}` };
  const native = settings.nativeSidecar ?? config.nativeSidecars;
  const status: InjectionStatus = { version: config.version, container: SIDECAR_NAME, mode: native ? 'native' : 'classic', queue, appPort };
  const drainToken = existingDrainToken(pod) ?? (config.newDrainToken ?? randomDrainToken)();
  const [backendSecret = config.defaultBackendSecret, ...mountedSecrets] = (settings.backendSecret ?? config.defaultBackendSecret).split(',');
  const volumeCollision = brokerSecretVolumeCollision(pod, mountedSecrets);
  if (volumeCollision) return { kind: 'refuse', message: volumeCollision };
  const sidecar = withMountedSecrets(sidecarContainer(config, { ...settings, backendSecret }, status, adminPort, drainToken), mountedSecrets);

  const desired = structuredClone(pod);
  desired.spec ??= { containers: [] };
  const spec = desired.spec;
  // Remove a sidecar left by an earlier admission in the other mode, then put ours in place.
  const otherList = native ? spec.containers : spec.initContainers;
  const otherIndex = otherList?.findIndex((c) => c.name === SIDECAR_NAME) ?? -1;
  if (otherList && otherIndex >= 0) otherList.splice(otherIndex, 1);
  if (native) {
    spec.initContainers ??= [];
    upsert(spec.initContainers, { ...sidecar, restartPolicy: 'Always' });
  } else {
    upsert(spec.containers, sidecar);
  }
  for (const volume of brokerSecretVolumes(mountedSecrets)) upsert((spec.volumes ??= []), volume);
  warnings.push(...addDrainHooks(spec.containers, adminPort, drainToken));
  if (spec.initContainers?.length === 0) delete spec.initContainers;
  desired.metadata ??= {};
  desired.metadata.annotations = { ...desired.metadata.annotations, [ANNOTATIONS.status]: JSON.stringify(status) };

  return { kind: 'patch', patch: jsonpatch.compare(pod as object, desired as object), status, warnings };
}

/** What to do about a queue name in the reply namespace (only namespace `kueuer` can form one). */
/** How to leave the reply namespace: another kueuer.io/queue, except in namespace `reply`, whose every queue is `reply.*`. */
export function replyFix(namespace: string): string {
  return namespace === 'reply'
    ? 'Kueuer cannot queue for the namespace "reply" (every queue of a namespace starts with its name): run the workload in another namespace'
    : `set ${ANNOTATIONS.queue} to a name that does not start with "reply."`;
}

/**
 * The app containers' preStop hook: the sidecar's /drain (shared/admin-server.ts), with the
 * pod's drain token, so that nothing else that reaches the admin port can stop the sidecar.
 */
export function drainHook(adminPort: number, drainToken: string): V1LifecycleHandler {
  return { httpGet: { path: '/drain', port: adminPort, scheme: 'HTTP', httpHeaders: [{ name: 'Authorization', value: `Bearer ${drainToken}` }] } };
}

export function randomDrainToken(): string {
  return randomBytes(24).toString('base64url');
}

/**
 * The drain token of a pod injected before (a reinvocation, or a template from `kueuer inject`):
 * kept, so admitting an injected pod again changes nothing.
 */
export function existingDrainToken(pod: V1Pod): string | undefined {
  const env = sidecarOptions.drainToken.env;
  const sidecar = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])].find((c) => c.name === SIDECAR_NAME);
  const value = sidecar?.env?.find((e) => e.name === env)?.value;
  if (value === undefined) return undefined;
  try {
    return sidecarOptions.drainToken.parse(value);
  } catch {
    return undefined;
  }
}

/**
 * Gives every app container a preStop hook that calls the sidecar's /drain,
 * which answers once the sidecar stopped taking requests and those in flight
 * are answered: the kubelet sends the app SIGTERM only after its preStop hook
 * returns, so the app is not stopped under work the sidecar still takes (the
 * kubelet stops a native sidecar only after the app containers). A container
 * with a preStop hook of its own keeps it: the returned warning says what
 * that costs.
 */
function addDrainHooks(containers: V1Container[], adminPort: number, drainToken: string): string[] {
  const warnings: string[] = [];
  const hook = drainHook(adminPort, drainToken);
  for (const c of containers) {
    if (c.name === SIDECAR_NAME) continue;
    const own = c.lifecycle?.preStop;
    if (own === undefined || isDrainHook(own)) {
      c.lifecycle = { ...c.lifecycle, preStop: hook };
      continue;
    }
    // Its own hook can drain only with the token: it gets the token in its environment.
    const env = sidecarOptions.drainToken.env;
    c.env = [...(c.env ?? []).filter((e) => e.name !== env), { name: env, value: drainToken }];
    warnings.push(
      `kueuer: container ${JSON.stringify(c.name)} has its own preStop hook, so Kueuer did not add its drain hook ` +
        `(GET /drain on port ${adminPort} with the header Authorization: Bearer $${env}, which Kueuer put in this container's environment); on pod deletion the app may get SIGTERM while the sidecar still takes requests ` +
        '(they are handed back to the queue); call that endpoint at the start of your hook to keep the order',
    );
  }
  return warnings;
}

function isDrainHook(h: V1LifecycleHandler): boolean {
  return h.httpGet?.path === '/drain' && h.exec === undefined;
}

/** The workload a pod's queue is named after when it names none; a Job's pods need their Job read first. */
function defaultWorkload(pod: V1Pod, namespace: string, jobWorkload: JobWorkload | undefined): string | PodDecision {
  const meta = pod.metadata ?? {};
  const owner = jobOwner(meta);
  if (!owner) return owningWorkloadName(meta);
  if (!jobWorkload) return { kind: 'lookup-job', namespace, owner };
  if ('name' in jobWorkload) return jobWorkload.name;
  return {
    kind: 'refuse',
    message:
      `cannot name the default queue of a pod of Job ${namespace}/${owner.name} (named after the Job's CronJob, else the Job): ` +
      `${jobWorkload.problem}; set ${ANNOTATIONS.queue} on the pod template (of a CronJob: spec.jobTemplate.spec.template)`,
  };
}

/** The container's port: an explicit number, a named container port, or the first container's first port. */
function resolveAppPort(pod: V1Pod, wanted: number | string | undefined): number | string {
  const containers = (pod.spec?.containers ?? []).filter((c) => c.name !== SIDECAR_NAME);
  if (typeof wanted === 'number') return wanted;
  if (typeof wanted === 'string') {
    for (const c of containers) {
      const port = c.ports?.find((p) => p.name === wanted);
      if (port) return port.containerPort;
    }
    return `${ANNOTATIONS.appPort}: no container declares a port named ${JSON.stringify(wanted)}`;
  }
  const first = containers[0]?.ports?.[0]?.containerPort;
  if (first === undefined) {
    return `${ANNOTATIONS.appPort} is required: the first container declares no port, so Kueuer cannot tell where the app listens`;
  }
  return first;
}

/**
 * The containers of a pod share one network namespace, so the sidecar's admin
 * port must be free: not a port any of the user's long-running containers
 * declares (its containers and its native sidecars, i.e. init containers with
 * restartPolicy Always; a plain init container has exited before the sidecar
 * starts), and not the app port. A collision refuses the pod, naming both and
 * the fix; a port is never picked silently, since scrapers and dashboards
 * expect the one configured.
 */
export function adminPortCollision(pod: V1Pod, adminPort: number, appPort: number): string | null {
  const fix = `set ${ANNOTATIONS.adminPort} on the pod template to a port no container uses ` + "(the default comes from the webhook's --sidecar-admin-port)";
  const running = [...(pod.spec?.initContainers ?? []).filter((c) => c.restartPolicy === 'Always'), ...(pod.spec?.containers ?? [])];
  for (const c of running.filter((c) => c.name !== SIDECAR_NAME)) {
    const port = c.ports?.find((p) => p.containerPort === adminPort && (p.protocol ?? 'TCP') === 'TCP');
    if (port) {
      const named = port.name ? ` (${JSON.stringify(port.name)})` : '';
      return `${ANNOTATIONS.adminPort}: the sidecar's admin port ${adminPort} is also port ${adminPort}${named} of container ${JSON.stringify(c.name)}; ${fix}`;
    }
  }
  if (appPort === adminPort)
    return `${ANNOTATIONS.adminPort}: the sidecar's admin port ${adminPort} is the app port ${appPort} (${ANNOTATIONS.appPort}); ${fix}`;
  return null;
}

/**
 * Puts our container in place. An existing one (an earlier admission) is
 * overlaid rather than replaced, so the fields the apiserver defaulted in
 * between (imagePullPolicy, probe timeouts, …) stay and a re-admission
 * produces no patch.
 */
function upsert<T extends V1Container | V1Volume>(list: T[], item: T): void {
  const i = list.findIndex((c) => c.name === item.name);
  if (i >= 0) list[i] = overlay(list[i], item) as T;
  else list.push(item);
}

/** `ours` wins at every leaf; keys only `base` has survive; equal-length arrays overlay element-wise. */
export function overlay(base: unknown, ours: unknown): unknown {
  if (Array.isArray(ours)) {
    if (!Array.isArray(base) || base.length !== ours.length) return ours;
    return ours.map((item, i) => overlay(base[i], item));
  }
  if (isPlainObject(ours)) {
    if (!isPlainObject(base)) return ours;
    const out: Record<string, unknown> = { ...base };
    for (const [k, v] of Object.entries(ours)) out[k] = overlay(base[k], v);
    return out;
  }
  return ours;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function sidecarContainer(config: InjectionConfig, settings: PodSettings, status: InjectionStatus, adminPort: number, drainToken: string): V1Container {
  const r = { ...config.resources, ...defined(settings.resources) };
  const resources: V1ResourceRequirements = {
    requests: { cpu: r.cpuRequest, memory: r.memoryRequest },
    limits: { memory: r.memoryLimit, ...(r.cpuLimit ? { cpu: r.cpuLimit } : {}) },
  };
  return {
    name: SIDECAR_NAME,
    image: config.image,
    args: ['sidecar'],
    env: [
      sidecarEnv('app', `127.0.0.1:${status.appPort}`),
      sidecarEnv('queue', status.queue),
      // Always written, the option's default when the pod names none, so the pod spec shows it.
      sidecarEnv('concurrency', settings.concurrency === undefined ? sidecarOptions.concurrency.defaultValue : String(settings.concurrency)),
      sidecarEnv('adminListen', `0.0.0.0:${adminPort}`),
      ...(settings.delivery ? [sidecarEnv('delivery', settings.delivery)] : []),
      // What /drain requires; the app containers' preStop hook sends it.
      sidecarEnv('drainToken', drainToken),
      ...(settings.queueType ? [sidecarEnv('rabbitmqQueueType', settings.queueType)] : []),
      // The heap's bounds, from the container's memory limit (see heapFlags).
      { name: 'NODE_OPTIONS', value: heapFlags(r.memoryLimit) },
    ],
    // Broker settings (KUEUER_BACKEND and any credentials) come only from a Secret.
    envFrom: [{ secretRef: { name: settings.backendSecret ?? config.defaultBackendSecret } }],
    ports: [{ name: 'kueuer-admin', containerPort: adminPort, protocol: 'TCP' }],
    readinessProbe: { httpGet: { path: '/readyz', port: 'kueuer-admin' }, periodSeconds: 5 },
    // 5 s to answer (the kubelet's default is 1 s): on a CPU-starved node a running sidecar answered later and was killed,
    // which costs a Kafka group a rebalance and reruns the requests it was running.
    livenessProbe: { httpGet: { path: '/healthz', port: 'kueuer-admin' }, periodSeconds: 10, timeoutSeconds: 5, failureThreshold: 3 },
    // Liveness (and readiness) wait for this: a sidecar slow to listen on a CPU-starved node gets 2 min, not 30 s and a kill.
    startupProbe: { httpGet: { path: '/healthz', port: 'kueuer-admin' }, periodSeconds: 2, failureThreshold: 60 },
    resources,
    securityContext: {
      runAsNonRoot: true,
      runAsUser: 65532,
      runAsGroup: 65532,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    },
  };
}

/** Bytes of a Kubernetes memory quantity (`256Mi`, `+1G`, `0.5Gi`, `268435456`, `1e9`), read by the grammar the annotations and options are validated with. */
export function quantityBytes(quantity: string): number {
  try {
    return quantityValue(quantity);
  } catch (err) {
    throw new Error(`not a memory quantity: ${JSON.stringify(quantity)}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * The share of the sidecar's memory limit given to V8's old generation, and
 * to each of its young generation's semi-spaces (V8 reserves three: the young
 * generation is at most 3 × the semi-space). With 1/4 and 1/16 the whole heap
 * is at most 7/16 of the limit; the rest holds code and the buffers and
 * sockets outside the heap. Measured in docs/design.md (the sidecar's memory).
 */
export const HEAP_SHARE = 0.25;
export const SEMI_SPACE_SHARE = 1 / 16;

/**
 * The sidecar's `--max-old-space-size` (MiB) for a memory limit. Set
 * explicitly rather than left to Node: Node sizes its default heap from the
 * memory it sees, which in a container can be the whole limit (or the node's
 * memory), so V8 would put off collecting until the kernel kills the
 * container for the limit instead.
 */
export function heapCeilingMiB(memoryLimit: string): number {
  return Math.max(16, Math.floor((quantityBytes(memoryLimit) * HEAP_SHARE) / 2 ** 20));
}

/**
 * The sidecar's V8 flags for a memory limit. `--max-old-space-size` alone
 * leaves the young generation at V8's own maximum, sized from the machine
 * (3 × 64 MiB on a 24 GiB host), so the semi-space is bounded too.
 */
export function heapFlags(memoryLimit: string): string {
  const semiSpace = Math.max(1, Math.floor((quantityBytes(memoryLimit) * SEMI_SPACE_SHARE) / 2 ** 20));
  return `--max-old-space-size=${heapCeilingMiB(memoryLimit)} --max-semi-space-size=${semiSpace}`;
}

/** One variable of the injected sidecar, named by the sidecar's own option spec. */
function sidecarEnv(option: keyof typeof sidecarOptions, value: string | undefined): { name: string; value: string } {
  if (value === undefined) throw new Error(`the sidecar option ${option} has no value to inject`);
  return { name: sidecarOptions[option].env, value };
}
