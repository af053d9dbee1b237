/**
 * Two things `kueuer check` and `kueuer status` verify beyond the install:
 * that every Service Kueuer routes sends all its traffic to the responders
 * (no old `Endpoints` object or Kubernetes-managed EndpointSlice with
 * addresses beside Kueuer's slice, and Kueuer's slice present), and that the
 * autoscaler's queue depths can be read from the broker as the webhook reads
 * them (KUEUER_BACKEND and KUEUER_RABBITMQ_MANAGEMENT_URL of the broker
 * Secret). `serviceTrafficProblem` judges; the rest reads.
 */
import type { V1EndpointSlice, V1Endpoints, V1Service } from '@kubernetes/client-node';
import { apiSecretSettings } from '../shared/broker-secret/shapes.js';
import type { Cluster } from '../shared/kube/cluster.js';
import pino from 'pino';
import { parseBackend } from '../shared/transport/backend.js';
import { MANAGEMENT_FIX } from '../shared/transport/amqp/depth.js';
import { openQueueDepth } from '../shared/transport/create-transport.js';
import { SLICE_MANAGED_BY, sliceName } from '../webhook/endpoints/endpoint-mirror.js';
import { MANAGED_BY_LABEL, rewrittenServices, SERVICE_NAME_LABEL } from '../webhook/endpoints/foreign-endpoints.js';
import { fail, ok, readFailure, type CheckResult } from './install-checks.js';
import { apiError, KubeTimeoutError, withinTimeout } from './kube-call.js';
import type { ServiceNote } from './workload-status.js';

const addressesOf = (e: V1Endpoints | undefined) => (e?.subsets ?? []).reduce((n, s) => n + (s.addresses?.length ?? 0) + (s.notReadyAddresses?.length ?? 0), 0);

/**
 * Why part of a rewritten Service's traffic does not reach the responders,
 * or null when all of it does: kube-proxy routes a Service by every slice
 * labelled with its name (an Endpoints object is mirrored into one).
 */
export function serviceTrafficProblem(name: string, endpoints: V1Endpoints | undefined, slices: readonly V1EndpointSlice[]): string | null {
  const problems: string[] = [];
  const old = addressesOf(endpoints);
  if (old > 0) problems.push(`an Endpoints object lists ${old} address(es) of its own`);
  for (const s of slices) {
    const manager = s.metadata?.labels?.[MANAGED_BY_LABEL] ?? 'no manager';
    if (manager === SLICE_MANAGED_BY || (s.endpoints ?? []).length === 0) continue;
    problems.push(`EndpointSlice ${s.metadata?.name} (${manager}) lists ${(s.endpoints ?? []).length} address(es)`);
  }
  if (!slices.some((s) => s.metadata?.labels?.[MANAGED_BY_LABEL] === SLICE_MANAGED_BY && s.metadata?.name === sliceName(name))) {
    problems.push(`it has no EndpointSlice ${sliceName(name)} listing the responders`);
  }
  return problems.length === 0 ? null : problems.join('; ');
}

/** The fix printed under a Service whose traffic bypasses the responders. */
export function serviceTrafficFix(namespace: string, name: string): string {
  return (
    `the webhook's leader removes what Kubernetes kept within seconds: check it runs and may get/delete endpoints (manifests/base/rbac.yaml); ` +
    `by hand: kubectl -n ${namespace} delete endpoints ${name}; kubectl -n ${namespace} delete endpointslices -l '${SERVICE_NAME_LABEL}=${name},${MANAGED_BY_LABEL}!=${SLICE_MANAGED_BY}'`
  );
}

/** The traffic of every rewritten Service among `services`: one Endpoints read and one slice list per Service. */
export async function readServiceTraffic(cluster: Cluster, services: readonly V1Service[]): Promise<ServiceNote[]> {
  const core = cluster.clients.core;
  const discovery = cluster.clients.discovery;
  return Promise.all(
    rewrittenServices(services).map(async ({ namespace, name }) => {
      const [endpoints, slices] = await Promise.all([
        core.readNamespacedEndpoints({ namespace, name }).catch((err: unknown) => {
          if (apiError(err).code === 404) return undefined;
          throw err;
        }),
        discovery.listNamespacedEndpointSlice({ namespace, labelSelector: `${SERVICE_NAME_LABEL}=${name}` }),
      ]);
      return { service: `${namespace}/${name}`, problem: serviceTrafficProblem(name, endpoints, slices.items), fix: serviceTrafficFix(namespace, name) };
    }),
  );
}

/** `kueuer check`'s line: every rewritten Service in the cluster sends all its traffic to the responders. */
export async function serviceTrafficCheck(cluster: Cluster): Promise<CheckResult[]> {
  const what = 'traffic of the opted-in Services unknown';
  let services: V1Service[];
  try {
    services = (await cluster.clients.core.listServiceForAllNamespaces()).items;
  } catch (err) {
    const why = err instanceof KubeTimeoutError ? { message: err.message, timedOutAfterS: err.seconds } : apiError(err);
    return [readFailure(what, { verb: 'list', resource: 'services' }, why)];
  }
  let traffic: ServiceNote[];
  try {
    traffic = await readServiceTraffic(cluster, services);
  } catch (err) {
    const why = err instanceof KubeTimeoutError ? `the Kubernetes API did not answer within ${err.seconds} s` : apiError(err).message;
    return [
      fail(
        `${what}: ${why}`,
        'let this user list services and endpointslices and get endpoints in every namespace (kubectl auth can-i list endpointslices -A)',
      ),
    ];
  }
  const bad = traffic.filter((t) => t.problem !== null);
  if (bad.length === 0) return [ok(`all traffic of the ${traffic.length} opted-in Service(s) reaches the responders`)];
  return bad.map((t) => fail(`Service ${t.service}: part of its traffic bypasses Kueuer: ${t.problem}`, t.fix));
}

/** A queue nobody uses: a depth read of it proves the broker's depth API answers (a missing queue reads as 0). */
const PROBE_QUEUE = 'kueuer.check';
const DEPTH_TIMEOUT_S = 8;

/** The autoscaler's view: a queue depth read from the broker with the broker Secret's settings, as the webhook reads it. */
export async function depthCheck(cluster: Cluster, namespace: string, secretName: string, mode: string): Promise<CheckResult> {
  if (mode === 'off') return ok('queue depths not needed (autoscaling off)');
  const where = `Secret ${namespace}/${secretName}`;
  let secret;
  try {
    secret = await cluster.clients.core.readNamespacedSecret({ namespace, name: secretName });
  } catch {
    return fail(`queue depths not checked: cannot read ${where}`, 'see the broker line above');
  }
  let managementUrl: string | undefined;
  let backend;
  try {
    const values = apiSecretSettings(secretName, secret.data); // Kueuer's keys, or an operator's Secret read by its shape
    managementUrl = values.KUEUER_RABBITMQ_MANAGEMENT_URL;
    backend = parseBackend(values.KUEUER_BACKEND ?? '');
  } catch {
    return fail(`queue depths not checked: ${where} has no usable KUEUER_BACKEND`, 'see the broker line above');
  }
  const restart = `then restart the webhook: kubectl -n ${namespace} rollout restart deployment/kueuer-webhook`;
  try {
    const reader = await withinTimeout(openQueueDepth(backend, pino({ level: 'silent' }), managementUrl), DEPTH_TIMEOUT_S);
    try {
      await withinTimeout(reader.read(PROBE_QUEUE), DEPTH_TIMEOUT_S);
    } finally {
      await reader.close();
    }
  } catch (err) {
    const fix =
      backend.kind === 'amqp'
        ? `add KUEUER_RABBITMQ_MANAGEMENT_URL=http://USER:PASS@HOST:15672 (RabbitMQ's management API) to ${where}; ${restart}`
        : `check the brokers in KUEUER_BACKEND of ${where}; ${restart}`;
    // The reader's message ends with the fix for a component's log; here the fix has a line of its own.
    const why = (err as Error).message.replace(`; ${MANAGEMENT_FIX}`, '');
    return fail(`queue depths unreadable, so nothing scales on backlog (${where}): ${why}`, fix);
  }
  return ok(`queue depths readable from the broker (${where}${managementUrl ? ', KUEUER_RABBITMQ_MANAGEMENT_URL' : ''})`);
}
