/**
 * A Service opted in after it had endpoints keeps them when the webhook takes
 * its selector away: Kubernetes leaves the old `Endpoints` object (which the
 * EndpointSlice mirroring controller then mirrors into a slice) and the
 * EndpointSlice controller's own slice, so kube-proxy would send part of the
 * traffic straight to the app pods, around Kueuer. This controller removes,
 * for every rewritten Service (opted in, with a responder port and no
 * selector), the Endpoints object and the slices of the two Kubernetes
 * controllers, and removes them again if they come back. Slices of any other
 * manager (Kueuer's own included) are never touched. A Service that gets its
 * selector back is left alone: its controllers recreate what they manage.
 *
 * It runs as a reconcile loop on the leader, never in admission: an admission
 * may be a dry run or be refused after the webhook answered.
 */
import type { CoreV1Api, DiscoveryV1Api, V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import { statusOf } from '../../shared/kube/cluster.js';
import type { Logger } from 'pino';
import { ANNOTATIONS } from '../../shared/annotations.js';
import { routesFromServices } from '../../shared/service-routes.js';
import { parseOriginal } from '../admission/service-rewrite.js';

export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';
export const MANAGED_BY_LABEL = 'endpointslice.kubernetes.io/managed-by';
/** The managers whose slices of a rewritten Service bypass Kueuer. */
export const KUBERNETES_SLICE_MANAGERS: readonly string[] = ['endpointslice-controller.k8s.io', 'endpointslicemirroring-controller.k8s.io'];

export function isKubernetesManagedSlice(slice: V1EndpointSlice): boolean {
  return KUBERNETES_SLICE_MANAGERS.includes(slice.metadata?.labels?.[MANAGED_BY_LABEL] ?? '');
}

/**
 * Whether the webhook took a selector away from `service`: its saved original
 * (kueuer.io/original-service) has one. A Service that never had a selector
 * keeps the Endpoints its owner wrote by hand (they are not Kubernetes', and
 * nothing would give them back on restore).
 */
function hadSelectorRemoved(service: V1Service): boolean {
  const raw = service.metadata?.annotations?.[ANNOTATIONS.originalService];
  const original = raw === undefined ? null : parseOriginal(raw);
  return original !== null && original.selector !== null && Object.keys(original.selector).length > 0;
}

/**
 * `namespace/name` of every Service the webhook rewrote: it has a route (opted
 * in, responder port), no selector now, and the webhook removed the one it had.
 */
export function rewrittenServices(services: readonly V1Service[]): Array<{ namespace: string; name: string }> {
  const routed = new Set(routesFromServices(services).routes.map((r) => r.service));
  return services
    .filter(
      (s) =>
        routed.has(`${s.metadata?.namespace ?? 'default'}/${s.metadata?.name ?? ''}`) &&
        Object.keys(s.spec?.selector ?? {}).length === 0 &&
        hadSelectorRemoved(s),
    )
    .map((s) => ({ namespace: s.metadata?.namespace ?? 'default', name: s.metadata!.name! }));
}

/** Whether `service`, read now from the API, is still one whose endpoints are Kueuer's alone. */
function stillRewritten(service: V1Service | undefined): boolean {
  return service !== undefined && rewrittenServices([service]).length === 1;
}

const isNotFound = (err: unknown) => statusOf(err) === 404;

/**
 * One pass over the rewritten Services: deletes what the Kubernetes
 * controllers left. Each Service is read again from the API before anything
 * of it is deleted, so a restore that the cache has not seen yet is never
 * undone. Returns how many objects were deleted (a caller checks again soon
 * when it is not 0).
 */
export async function removeForeignEndpoints(core: CoreV1Api, discovery: DiscoveryV1Api, services: readonly V1Service[], log: Logger): Promise<number> {
  let deleted = 0;
  for (const { namespace, name } of rewrittenServices(services)) {
    try {
      const slices = (await discovery.listNamespacedEndpointSlice({ namespace, labelSelector: `${SERVICE_NAME_LABEL}=${name}` })).items.filter(
        isKubernetesManagedSlice,
      );
      const endpoints = await core.readNamespacedEndpoints({ namespace, name }).catch((err: unknown) => {
        if (isNotFound(err)) return undefined;
        throw err;
      });
      if (slices.length === 0 && !endpoints) continue;
      const fresh = (await core.listNamespacedService({ namespace, fieldSelector: `metadata.name=${name}` })).items[0];
      if (!stillRewritten(fresh)) continue;
      // The Endpoints object first: the mirroring controller would otherwise mirror it again.
      if (endpoints) {
        await core.deleteNamespacedEndpoints({ namespace, name }).catch((err: unknown) => {
          if (!isNotFound(err)) throw err;
        });
        deleted++;
      }
      for (const slice of slices) {
        await discovery.deleteNamespacedEndpointSlice({ namespace, name: slice.metadata!.name! }).catch((err: unknown) => {
          if (!isNotFound(err)) throw err;
        });
        deleted++;
      }
      log.info(
        { service: `${namespace}/${name}`, endpoints: endpoints ? 1 : 0, slices: slices.map((s) => s.metadata?.name) },
        'removed the endpoints Kubernetes kept for a Service Kueuer routes, so all its traffic goes through the responders',
      );
    } catch (err) {
      log.warn(
        { err: (err as Error).message, service: `${namespace}/${name}` },
        "could not remove the Service's old Endpoints or Kubernetes-managed EndpointSlices (part of its traffic bypasses Kueuer); retrying; check the webhook's RBAC (manifests/base/rbac.yaml)",
      );
    }
  }
  return deleted;
}
