/**
 * Keeps one EndpointSlice per queued Service in the Service's namespace,
 * listing the responder pods (as the responder Service's own EndpointSlices
 * do) on the responder port the webhook gave that Service. A queued Service
 * has no selector, so this slice is what kube-proxy routes it by.
 *
 * `desiredSlices` is pure; `runEndpointMirror` applies it to the cluster
 * whenever the Services or the responder's endpoints change.
 */
import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { ANNOTATIONS } from '../../shared/annotations.js';
import { ManagedSet, withResourceVersion, type ManagedStore } from '../../shared/kube/managed-set.js';
import type { Cluster } from '../../shared/kube/cluster.js';
import { watcher, type ObjectSource } from '../../shared/kube/object-source.js';
import { routesFromServices } from '../../shared/service-routes.js';
import { stableJson } from '../../shared/stable-json.js';
import { SerialRuns } from '../../shared/serial.js';
import { MANAGED_BY_LABEL, removeForeignEndpoints, SERVICE_NAME_LABEL } from './foreign-endpoints.js';

/**
 * `endpointslice.kubernetes.io/managed-by` on the mirrored slices: a
 * controller name, domain-style as that label asks (not the autoscalers'
 * `AUTOSCALER_MANAGED_BY`). Only slices with this value are ever replaced or
 * deleted; changing it would orphan the slices already in clusters.
 */
export const SLICE_MANAGED_BY = 'kueuer.io';

export function sliceName(serviceName: string): string {
  const name = `kueuer-${serviceName}`;
  return name.length <= 63 ? name : name.slice(0, 63).replace(/-+$/, '');
}

export function desiredSlices(services: readonly V1Service[], responderSlices: readonly V1EndpointSlice[]): V1EndpointSlice[] {
  const { routes } = routesFromServices(services);
  const endpoints = responderSlices.flatMap((s) => s.endpoints ?? []);
  const addressType = responderSlices[0]?.addressType ?? 'IPv4';
  const out: V1EndpointSlice[] = [];
  for (const route of routes) {
    const [namespace, name] = route.service.split('/') as [string, string];
    const service = services.find((s) => s.metadata?.namespace === namespace && s.metadata?.name === name)!;
    out.push({
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: {
        name: sliceName(name),
        namespace,
        labels: { [SERVICE_NAME_LABEL]: name, [MANAGED_BY_LABEL]: SLICE_MANAGED_BY },
        annotations: { [ANNOTATIONS.responderPort]: String(route.port) },
        // Deleting the Service deletes its slice.
        ownerReferences: service.metadata?.uid
          ? [{ apiVersion: 'v1', kind: 'Service', name, uid: service.metadata.uid, controller: true, blockOwnerDeletion: true }]
          : [],
      },
      addressType,
      endpoints: endpoints.map((e) => ({
        addresses: e.addresses,
        conditions: e.conditions,
        ...(e.nodeName ? { nodeName: e.nodeName } : {}),
        ...(e.zone ? { zone: e.zone } : {}),
      })),
      ports: (service.spec?.ports ?? []).map((p) => ({ ...(p.name ? { name: p.name } : {}), port: route.port, protocol: 'TCP' })),
    });
  }
  return out;
}

/** The fields that matter when deciding whether a stored slice needs replacing. */
function fingerprint(s: V1EndpointSlice): string {
  return stableJson([s.metadata?.labels, s.metadata?.annotations, s.metadata?.ownerReferences?.map((o) => o.uid), s.addressType, s.endpoints, s.ports]);
}

/** Re-check periodically as well: a failed write is retried even when nothing changes. */
const RESYNC_MS = 30_000;
/** How often the Kubernetes-managed endpoints of rewritten Services are looked for (no watch: they are another controller's). */
const FOREIGN_SWEEP_MS = 15_000;
/** After a sweep deleted something, the next one comes this soon: a controller may recreate what it was mid-way writing. */
const FOREIGN_RECHECK_MS = 3_000;

export interface EndpointMirror {
  /** Runs one pass now (a replica that just became the leader). */
  reconcile(): Promise<void>;
  stop(): Promise<void>;
}

export async function runEndpointMirror(
  cluster: Cluster,
  services: ObjectSource<V1Service>,
  systemNamespace: string,
  responderService: string,
  log: Logger,
  /** Only the leader writes slices. */
  isLeader: () => boolean = () => true,
): Promise<EndpointMirror> {
  const { discovery: api, core } = cluster.clients;
  const watch = watcher(cluster, log);
  const responderSlices = await watch<V1EndpointSlice>(
    `/apis/discovery.k8s.io/v1/namespaces/${systemNamespace}/endpointslices`,
    () => api.listNamespacedEndpointSlice({ namespace: systemNamespace, labelSelector: `${SERVICE_NAME_LABEL}=${responderService}` }),
    `${SERVICE_NAME_LABEL}=${responderService}`,
  );
  const managedSelector = `${MANAGED_BY_LABEL}=${SLICE_MANAGED_BY}`;
  const store: ManagedStore<V1EndpointSlice> = {
    source: await watch<V1EndpointSlice>(
      '/apis/discovery.k8s.io/v1/endpointslices',
      () => api.listEndpointSliceForAllNamespaces({ labelSelector: managedSelector }),
      managedSelector,
    ),
    create: async (body) => void (await api.createNamespacedEndpointSlice({ namespace: body.metadata!.namespace!, body })),
    replace: async (o, rv) =>
      void (await api.replaceNamespacedEndpointSlice({ name: o.metadata!.name!, namespace: o.metadata!.namespace!, body: withResourceVersion(o, rv) })),
    remove: async (namespace, name) => void (await api.deleteNamespacedEndpointSlice({ name, namespace })),
  };
  const set = new ManagedSet<V1EndpointSlice, undefined>({
    store,
    desired: async () => desiredSlices(services.list(), responderSlices.list()).map((object) => ({ object, context: undefined })),
    fingerprint,
    writeFailed: (err, _wanted, _existed, key) =>
      log.warn({ err: (err as Error).message, slice: key }, 'could not write an EndpointSlice; retrying on the next change'),
    removeFailed: (err, _stale, key) => log.warn({ err: (err as Error).message, slice: key }, 'could not delete a stale EndpointSlice'),
    runFailed: (err) => log.error({ err: (err as Error).message }, 'could not mirror the EndpointSlices'),
    active: isLeader,
  });
  void set.start([services, responderSlices], RESYNC_MS);
  // The endpoints Kubernetes kept for rewritten Services: swept on every Service change and on a timer.
  const sweeps = new SerialRuns((err) => log.error({ err: (err as Error).message }, 'could not remove the old endpoints of rewritten Services'));
  let recheck: NodeJS.Timeout | undefined;
  const sweep = () =>
    sweeps.run(async () => {
      if (!isLeader()) return;
      if ((await removeForeignEndpoints(core, api, services.list(), log)) > 0) {
        clearTimeout(recheck);
        recheck = setTimeout(() => void sweep(), FOREIGN_RECHECK_MS);
        recheck.unref();
      }
    });
  services.onChange(() => void sweep());
  const sweepTimer = setInterval(() => void sweep(), FOREIGN_SWEEP_MS);
  sweepTimer.unref();
  void sweep();
  return {
    reconcile: async () => {
      await set.reconcile();
      await sweep();
    },
    async stop() {
      clearInterval(sweepTimer);
      clearTimeout(recheck);
      await sweeps.idle();
      await set.stop();
      await responderSlices.stop();
    },
  };
}
