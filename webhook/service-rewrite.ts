/**
 * What the webhook does to a Service, as pure functions. An annotated
 * Service is pointed at the shared responder: its selector is removed (Kueuer
 * manages its EndpointSlice, listing the responder pods) and every port
 * targets the responder port allocated to this Service, on which the responder
 * serves exactly this Service's queue. Routing therefore never depends on the
 * Host header: ClusterIP, DNS name, NodePort and an Ingress that rewrites Host
 * all reach the same port. The original selector and target ports are kept in
 * an annotation; removing `kueuer.io/inject` restores them.
 */
import type { V1Service, V1ServicePort } from '@kubernetes/client-node';
import jsonpatch, { type Operation } from 'fast-json-patch';
import { ANNOTATIONS, parseServiceSettings, wantsInjection } from '../shared/annotations.js';
import { serviceQueue } from '../shared/queue-names.js';

/** Responder ports handed to Services. */
export const RESPONDER_PORT_RANGE = { first: 20000, last: 29999 } as const;

export interface OriginalService {
  selector: Record<string, string> | null;
  /** Target port of each Service port, by port number. */
  targetPorts: Array<{ port: number; targetPort: number | string | null }>;
}

export type ServiceDecision =
  | { kind: 'skip'; reason: string }
  | { kind: 'refuse'; message: string }
  | { kind: 'patch'; patch: Operation[]; responderPort: number | null; queue: string | null };

/** FNV-1a, for a stable preferred port per Service. */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/**
 * The Service's responder port: the one it already has if nobody else holds
 * it, else the first free port from a place derived from its name.
 */
export function allocateResponderPort(serviceKey: string, current: number | undefined, used: ReadonlySet<number>): number | null {
  const size = RESPONDER_PORT_RANGE.last - RESPONDER_PORT_RANGE.first + 1;
  if (current !== undefined && current >= RESPONDER_PORT_RANGE.first && current <= RESPONDER_PORT_RANGE.last && !used.has(current)) return current;
  const start = fnv1a(serviceKey) % size;
  for (let i = 0; i < size; i++) {
    const port = RESPONDER_PORT_RANGE.first + ((start + i) % size);
    if (!used.has(port)) return port;
  }
  return null;
}

export function decideService(
  service: V1Service,
  requestNamespace: string | undefined,
  usedPorts: (serviceKey: string) => ReadonlySet<number>,
): ServiceDecision {
  const meta = service.metadata ?? {};
  const namespace = meta.namespace || requestNamespace || 'default';
  const name = meta.name ?? '';
  const annotations = meta.annotations ?? {};
  const wanted = wantsInjection(annotations);
  if (!wanted.ok) return { kind: 'refuse', message: wanted.problems.join('; ') };
  const saved = annotations[ANNOTATIONS.originalService];

  if (!wanted.value) {
    if (saved === undefined) return { kind: 'skip', reason: 'not annotated' };
    return restore(service, saved);
  }

  const parsed = parseServiceSettings(annotations);
  if (!parsed.ok) return { kind: 'refuse', message: parsed.problems.join('; ') };
  const spec = service.spec ?? {};
  if (spec.type === 'ExternalName') return { kind: 'refuse', message: `${ANNOTATIONS.inject}: an ExternalName Service has no traffic to queue` };
  if (spec.clusterIP === 'None') {
    return { kind: 'refuse', message: `${ANNOTATIONS.inject}: a headless Service (clusterIP: None) cannot be queued: clients connect to pod IPs directly` };
  }
  const ports = spec.ports ?? [];
  if (ports.length === 0) return { kind: 'refuse', message: `${ANNOTATIONS.inject}: the Service has no ports` };
  const nonTcp = ports.find((p) => (p.protocol ?? 'TCP') !== 'TCP');
  if (nonTcp) return { kind: 'refuse', message: `${ANNOTATIONS.inject}: port ${nonTcp.port} is ${nonTcp.protocol}; only TCP (HTTP) ports can be queued` };
  if (!name) return { kind: 'refuse', message: `${ANNOTATIONS.inject}: the Service needs a name (generateName is not supported)` };

  const key = `${namespace}/${name}`;
  const currentRaw = annotations[ANNOTATIONS.responderPort];
  const current = currentRaw !== undefined && /^\d+$/.test(currentRaw) ? Number(currentRaw) : undefined;
  const responderPort = allocateResponderPort(key, current, usedPorts(key));
  if (responderPort === null) return { kind: 'refuse', message: 'kueuer: every responder port is in use; no more Services can be queued' };

  // The first rewrite records what it replaces; later ones keep that record.
  const original: OriginalService =
    saved !== undefined
      ? (JSON.parse(saved) as OriginalService)
      : { selector: spec.selector ?? null, targetPorts: ports.map((p) => ({ port: p.port, targetPort: p.targetPort ?? null })) };

  const desired = structuredClone(service);
  desired.metadata ??= {};
  desired.metadata.annotations = {
    ...desired.metadata.annotations,
    [ANNOTATIONS.originalService]: JSON.stringify(original),
    [ANNOTATIONS.responderPort]: String(responderPort),
  };
  desired.spec ??= {};
  delete desired.spec.selector;
  desired.spec.ports = ports.map((p): V1ServicePort => ({ ...p, targetPort: responderPort as unknown as V1ServicePort['targetPort'] }));
  return {
    kind: 'patch',
    patch: jsonpatch.compare(service as object, desired as object),
    responderPort,
    queue: serviceQueue(namespace, name, parsed.value.queue),
  };
}

function restore(service: V1Service, saved: string): ServiceDecision {
  let original: OriginalService;
  try {
    original = JSON.parse(saved) as OriginalService;
  } catch {
    return { kind: 'refuse', message: `${ANNOTATIONS.originalService} is not valid JSON; restore the Service's selector by hand and remove it` };
  }
  const desired = structuredClone(service);
  const annotations = { ...desired.metadata?.annotations };
  delete annotations[ANNOTATIONS.originalService];
  delete annotations[ANNOTATIONS.responderPort];
  desired.metadata = { ...desired.metadata, annotations };
  desired.spec ??= {};
  if (original.selector) desired.spec.selector = original.selector;
  desired.spec.ports = (desired.spec.ports ?? []).map((p) => {
    const was = original.targetPorts.find((t) => t.port === p.port);
    const restored: V1ServicePort = { ...p };
    if (was?.targetPort !== null && was?.targetPort !== undefined) restored.targetPort = was.targetPort as V1ServicePort['targetPort'];
    else delete restored.targetPort;
    return restored;
  });
  return { kind: 'patch', patch: jsonpatch.compare(service as object, desired as object), responderPort: null, queue: null };
}
