/**
 * `kueuer status`: the opted-in workloads (Deployments and StatefulSets
 * whose pod template has the opt-in label, in namespaces labelled
 * kueuer.io/injection=enabled) with queue, backlog, replicas, the desired
 * replicas of the generated HPA, and how many pods carry the sidecar. This
 * module reads the cluster and the broker; cli/workload-status.ts builds the rows.
 */
import type { V1Service, V2HorizontalPodAutoscaler } from '@kubernetes/client-node';
import { parseAsyncStore } from '../responder/config.js';
import { asyncRoutes, asyncStoreChoice, formatAsyncRows, readAsyncRows, type AsyncRow, type AsyncStoreChoice } from './async-status.js';
import { apiSecretSettings } from '../shared/broker-secret/shapes.js';
import pino from 'pino';
import { NAMESPACE_LABEL, NAMESPACE_LABEL_VALUE } from '../shared/annotations.js';
import type { Cluster } from '../shared/kube/cluster.js';
import type { OptionValues } from '../shared/options.js';
import { parseBackend, type BackendSpec } from '../shared/transport/backend.js';
import { openQueueDepth } from '../shared/transport/create-transport.js';
import type { QueueDepthReader } from '../shared/transport/transport.js';
import { autoscalerName } from '../webhook/autoscaling/desired-objects.js';
import { webhookOptions } from '../webhook/config.js';
import type { Command } from './command.js';
import { checkOptions } from './check.js';
import { apiDoesNotAnswer, apiError, apiTimeoutOption, kubeconfigFix, KubeTimeoutError, noKubeconfig, openCommandCluster, withinTimeout } from './kube-call.js';
import { readServiceTraffic } from './traffic-checks.js';
import {
  formatStatus,
  optedInWorkloads,
  statusRow,
  workloadQueue,
  type Backlog,
  type Read,
  type ServiceNote,
  type StatusRow,
  type Workload,
} from './workload-status.js';

export const statusOptions = {
  systemNamespace: webhookOptions.systemNamespace,
  backendSecret: checkOptions.backendSecret,
  backend: {
    ...webhookOptions.backend,
    description: 'broker to read backlogs from (default: KUEUER_BACKEND of the backend Secret in the system namespace)',
  },
  rabbitmqManagementUrl: webhookOptions.rabbitmqManagementUrl,
  asyncStore: {
    flag: 'async-store',
    env: 'KUEUER_ASYNC_STORE',
    description:
      "the responders' store of asynchronous requests, to read their backlog from (redis://host:port; default: KUEUER_ASYNC_STORE of the backend Secret)",
    optional: true,
    parse: parseAsyncStore,
  },
  apiTimeout: apiTimeoutOption,
  namespace: {
    flag: 'namespace',
    env: 'KUEUER_STATUS_NAMESPACE',
    description: 'comma-separated namespaces to read instead of every namespace labelled kueuer.io/injection=enabled (for a user who may not list namespaces)',
    optional: true,
    parse: parseNamespaces,
  },
};

/** A comma-separated list of namespace names (DNS-1123 labels). */
export function parseNamespaces(raw: string): string[] {
  const names = raw
    .split(',')
    .map((n) => n.trim())
    .filter((n) => n !== '');
  if (names.length === 0) throw new Error('expected one or more namespace names, comma-separated');
  for (const n of names) {
    if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(n)) throw new Error(`${JSON.stringify(n.slice(0, 80))} is not a namespace name (a DNS-1123 label)`);
  }
  return [...new Set(names)];
}

type StatusOptions = OptionValues<typeof statusOptions>;

/** Why a read failed, for a cell shown as unknown: forbidden names the verb and resource. */
function unknownRead(err: unknown, verb: string, resource: string, namespace: string): { unknown: string } {
  const { code, message } = apiError(err);
  if (code === 403)
    return { unknown: `forbidden: this user may not ${verb} ${resource} in namespace ${namespace} (kubectl auth can-i ${verb} ${resource} -n ${namespace})` };
  return { unknown: `cannot ${verb} ${resource} in namespace ${namespace}: ${message}` };
}

/** The Kubernetes API does not answer at all: the one line `kueuer status` prints, with the fix. */
export class ApiUnreachable extends Error {}

/** The KUEUER_* settings of the backend Secret, as the components read them; or why they cannot be read. */
async function backendSecretValues(cluster: Cluster, o: StatusOptions): Promise<{ values: Record<string, string> } | { unknown: string }> {
  let secret;
  try {
    secret = await cluster.clients.core.readNamespacedSecret({ namespace: o.systemNamespace, name: o.backendSecret });
  } catch (err) {
    return { unknown: `cannot read the Secret ${o.systemNamespace}/${o.backendSecret}: ${(err as Error).message.split('\n')[0]}` };
  }
  try {
    return { values: apiSecretSettings(o.backendSecret, secret.data) }; // Kueuer's keys, or an operator's Secret read by its shape
  } catch (err) {
    return { unknown: (err as Error).message };
  }
}

type SecretRead = () => Promise<{ values: Record<string, string> } | { unknown: string }>;

/** Where the broker is: --backend, else the backend Secret; the management URL as the components read it (flag, else the Secret); or why there is none. */
async function brokerSettings(
  o: StatusOptions,
  readSecret: SecretRead,
): Promise<{ backend: BackendSpec; managementUrl: string | undefined } | { unknown: string }> {
  if (o.backend) return { backend: o.backend, managementUrl: o.rabbitmqManagementUrl };
  const secret = await readSecret();
  if ('unknown' in secret) return secret;
  const { values } = secret;
  const raw = values.KUEUER_BACKEND;
  if (!raw) return { unknown: `the Secret ${o.systemNamespace}/${o.backendSecret} has no KUEUER_BACKEND` };
  // A URL that does not parse throws: the caller names KUEUER_BACKEND.
  return { backend: parseBackend(raw), managementUrl: o.rabbitmqManagementUrl ?? values.KUEUER_RABBITMQ_MANAGEMENT_URL };
}

/** How long the broker may take to connect or to answer one queue's depth before the backlog shows as unknown. */
const BROKER_TIMEOUT_S = 5;

/** Broker work bounded by BROKER_TIMEOUT_S; the timeout says what was being done. */
function withinBrokerTimeout<T>(work: Promise<T>, what: string): Promise<T> {
  return withinTimeout(work, BROKER_TIMEOUT_S).catch((err: unknown) => {
    throw err instanceof KubeTimeoutError ? new Error(`${what}: ${err.message}`) : err;
  });
}

async function openDepth(o: StatusOptions, readSecret: SecretRead): Promise<QueueDepthReader | { unknown: string }> {
  let broker;
  try {
    broker = await brokerSettings(o, readSecret);
  } catch (err) {
    return { unknown: `KUEUER_BACKEND in the Secret ${o.systemNamespace}/${o.backendSecret}: ${(err as Error).message}` };
  }
  if ('unknown' in broker) return broker;
  try {
    return await withinBrokerTimeout(openQueueDepth(broker.backend, pino({ level: 'silent' }), broker.managementUrl), 'connecting');
  } catch (err) {
    return { unknown: `cannot reach the broker: ${(err as Error).message}` };
  }
}

async function readBacklog(depth: QueueDepthReader | { unknown: string }, queue: string): Promise<Backlog> {
  if ('unknown' in depth) return depth;
  try {
    return { value: (await withinBrokerTimeout(depth.read(queue), 'reading the depth')).backlog };
  } catch (err) {
    return { unknown: `the broker did not answer for ${queue}: ${(err as Error).message}` };
  }
}

/**
 * No answer, or an answer from whatever runs at the server the client fell back to without a
 * kubeconfig: the one FAIL line with the fix. An HTTP refusal (403, 404) from a real apiserver returns.
 */
function throwIfUnreachable(err: unknown, server: string): void {
  const fix = kubeconfigFix(server);
  const { code, message } = apiError(err);
  if (code === undefined || err instanceof KubeTimeoutError || noKubeconfig(fix)) {
    const what = code === undefined || err instanceof KubeTimeoutError ? apiDoesNotAnswer(server, err) : `Kubernetes API at ${server}: ${message}`;
    throw new ApiUnreachable(`FAIL ${what}\n     fix: ${fix}`);
  }
}

/** The rows, and the namespaces that could not be read (each a line saying why). */
export interface StatusReport {
  rows: StatusRow[];
  notes: string[];
  /** Every opted-in Service, and whether all its traffic reaches the responders. */
  services: ServiceNote[];
  /** Every Service with kueuer.io/async, and its backlog in the responders' store. */
  async: AsyncRow[];
}

/** The responders' store of asynchronous requests: --async-store, else the backend Secret's KUEUER_ASYNC_STORE. */
async function asyncStoreOf(o: StatusOptions, readSecret: SecretRead): Promise<AsyncStoreChoice> {
  const where = `the Secret ${o.systemNamespace}/${o.backendSecret}`;
  if (o.asyncStore) return asyncStoreChoice(o.asyncStore, undefined, parseAsyncStore, where);
  const secret = await readSecret();
  if ('unknown' in secret) return secret;
  return asyncStoreChoice(undefined, secret.values.KUEUER_ASYNC_STORE, parseAsyncStore, where);
}

export async function collectStatus(o: StatusOptions): Promise<StatusReport> {
  const cluster = await openCommandCluster(o.apiTimeout);
  const { core, apps, autoscaling: hpas } = cluster.clients;
  const { server } = cluster;
  let namespaces: string[];
  try {
    namespaces =
      o.namespace ?? (await core.listNamespace({ labelSelector: `${NAMESPACE_LABEL}=${NAMESPACE_LABEL_VALUE}` })).items.map((n) => n.metadata!.name!);
  } catch (err) {
    throwIfUnreachable(err, server);
    if (apiError(err).code === 403) {
      throw new ApiUnreachable(
        `FAIL this user may not list namespaces, so kueuer status cannot find the ones labelled ${NAMESPACE_LABEL}=${NAMESPACE_LABEL_VALUE}\n     fix: name them: kueuer status --namespace NS[,NS…]`,
      );
    }
    throw err;
  }
  const workloads: Array<Workload & { selector: string }> = [];
  const namespaceNotes: string[] = [];
  const services: ServiceNote[] = [];
  const serviceObjects: V1Service[] = [];
  const readable: string[] = [];
  for (const ns of [...namespaces].sort()) {
    const [deploymentList, statefulSetList] = await Promise.allSettled([
      apps.listNamespacedDeployment({ namespace: ns }),
      apps.listNamespacedStatefulSet({ namespace: ns }),
    ]);
    // One namespace this user cannot read is a note, not the end of the listing.
    if (deploymentList.status === 'rejected' || statefulSetList.status === 'rejected') {
      const failed: [string, unknown] =
        deploymentList.status === 'rejected'
          ? ['deployments.apps', deploymentList.reason]
          : ['statefulsets.apps', (statefulSetList as PromiseRejectedResult).reason];
      throwIfUnreachable(failed[1], server);
      namespaceNotes.push(`${ns}: ${unknownRead(failed[1], 'list', failed[0], ns).unknown}`);
      continue;
    }
    readable.push(ns);
    workloads.push(...optedInWorkloads(deploymentList.value.items, statefulSetList.value.items));
  }
  for (const ns of readable) {
    try {
      const items = (await core.listNamespacedService({ namespace: ns })).items;
      serviceObjects.push(...items);
      services.push(...(await readServiceTraffic(cluster, items)));
    } catch (err) {
      throwIfUnreachable(err, server);
      namespaceNotes.push(`${ns}: traffic of the opted-in Services unknown: ${unknownRead(err, 'list', 'services', ns).unknown}`);
    }
  }
  // The backend Secret is read once, when something needs it.
  let secret: ReturnType<SecretRead> | undefined;
  const readSecret: SecretRead = () => (secret ??= backendSecretValues(cluster, o));
  const asyncRows =
    asyncRoutes(serviceObjects).length > 0 ? readAsyncRows(serviceObjects, await asyncStoreOf(o, readSecret), withinBrokerTimeout) : Promise.resolve([]);
  const depth = workloads.length > 0 ? await openDepth(o, readSecret) : { unknown: 'no workloads' };
  try {
    const rows = await Promise.all(
      workloads.map(async (w) => {
        const [pods, hpa, backlog] = await Promise.all([
          core.listNamespacedPod({ namespace: w.namespace, labelSelector: w.selector }).then(
            (list): Read<typeof list.items> => list.items,
            (err: unknown) => unknownRead(err, 'list', 'pods', w.namespace),
          ),
          hpas
            .readNamespacedHorizontalPodAutoscaler({
              namespace: w.namespace,
              name: autoscalerName({ kind: w.kind, metadata: { name: w.name, namespace: w.namespace, uid: '' } }),
            })
            .catch((err: unknown): Read<V2HorizontalPodAutoscaler> | undefined =>
              apiError(err).code === 404 ? undefined : unknownRead(err, 'get', 'horizontalpodautoscalers.autoscaling', w.namespace),
            ),
          readBacklog(depth, workloadQueue(w)),
        ]);
        return statusRow(w, pods, hpa, backlog);
      }),
    );
    return { rows, notes: namespaceNotes, services, async: await asyncRows };
  } finally {
    if (!('unknown' in depth)) await depth.close();
  }
}

export const statusCommand: Command<typeof statusOptions> = {
  name: 'status',
  usage: 'kueuer status [--namespace NS[,NS…]] [--system-namespace NS] [--backend URL] [options]',
  summary:
    'Lists the opted-in workloads: queue, backlog, replicas, desired replicas, and how many pods carry the sidecar (and why not); and the asynchronous backlog of each Service with kueuer.io/async.',
  options: statusOptions,
  async run(o) {
    try {
      const report = await collectStatus(o);
      process.stdout.write(formatStatus(report.rows, report.notes, report.services) + formatAsyncRows(report.async));
      return 0;
    } catch (err) {
      if (err instanceof ApiUnreachable) process.stderr.write(`${err.message}\n`);
      else process.stderr.write(`kueuer status: ${apiError(err).message}\n`);
      return 1;
    }
  },
};
