/**
 * What the webhook does to a Service, as pure functions. An annotated
 * Service is pointed at the shared responder: its selector is removed (Kueuer
 * manages its EndpointSlice, listing the responder pods) and every port
 * targets the responder port allocated to this Service, on which the responder
 * serves exactly this Service's queue. Routing therefore never depends on the
 * Host header: ClusterIP, DNS name, NodePort and an Ingress that rewrites Host
 * all reach the same port. The original selector and target ports are kept in
 * an annotation; removing the `kueuer.io/inject` label restores them (the
 * webhook configuration's objectSelector still sends that UPDATE: the old
 * object carries the label).
 */
import type { V1Service, V1ServicePort } from '@kubernetes/client-node';
import jsonpatch, { type Operation } from 'fast-json-patch';
import { ANNOTATIONS, LABELS, optIn, parseServiceSettings } from '../../shared/annotations.js';
import { serviceQueue } from '../../shared/queue-names.js';

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
  /** `warnings`: for the API client, e.g. the deprecated opt-in annotation. */
  | { kind: 'patch'; patch: Operation[]; responderPort: number | null; queue: string | null; warnings: string[] };

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

/**
 * What the request itself sets, compared with the stored object (the
 * AdmissionReview's oldObject): the user's new intent. A value equal to the
 * stored one is the webhook's own rewrite carried along, never a change.
 * Without an old object (CREATE) nothing counts as changed: a Service created
 * with Kueuer's annotations (a restored backup) keeps its saved record.
 */
export interface UserChanges {
  /** The selector the request sets, when it differs from the stored one. */
  selector?: Record<string, string>;
  /** Target ports the request sets, by port number, where they differ from the stored object's (null: none, the port itself). */
  targetPorts: Map<number, number | string | null>;
}

export function userChanges(service: V1Service, old: V1Service | undefined): UserChanges {
  const changes: UserChanges = { targetPorts: new Map() };
  if (!old) return changes;
  const selector = service.spec?.selector;
  if (selector && Object.keys(selector).length > 0 && !sameJson(selector, old.spec?.selector)) changes.selector = selector;
  const oldPorts = old.spec?.ports ?? [];
  for (const p of service.spec?.ports ?? []) {
    const was = oldPorts.find((o) => o.port === p.port);
    const target = p.targetPort ?? null;
    if (!was || !sameJson(target, was.targetPort ?? null)) changes.targetPorts.set(p.port, target);
  }
  return changes;
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
}

/** The saved record, or null when it is not one (hand-edited). */
export function parseOriginal(raw: string): OriginalService | null {
  try {
    const v = JSON.parse(raw) as OriginalService;
    if (typeof v !== 'object' || v === null || !Array.isArray(v.targetPorts)) return null;
    if (v.selector !== null && (typeof v.selector !== 'object' || Array.isArray(v.selector))) return null;
    return v;
  } catch {
    return null;
  }
}

/**
 * The record of a queued Service after this request: the saved one (or, on
 * the first rewrite, the Service's own spec) with what the request changes
 * written over it, for the Service's current ports.
 */
export function recordOriginal(service: V1Service, saved: OriginalService | null, changes: UserChanges): OriginalService {
  const ports = service.spec?.ports ?? [];
  if (!saved) return { selector: service.spec?.selector ?? null, targetPorts: ports.map((p) => ({ port: p.port, targetPort: p.targetPort ?? null })) };
  return {
    selector: changes.selector ?? saved.selector,
    targetPorts: ports.map((p) => ({
      port: p.port,
      targetPort: changes.targetPorts.has(p.port) ? changes.targetPorts.get(p.port)! : (saved.targetPorts.find((t) => t.port === p.port)?.targetPort ?? null),
    })),
  };
}

/**
 * `old`: the stored Service on UPDATE. The annotations Kueuer writes are read
 * from it when the request drops them (a server-side apply by a manager that
 * owns them), so the Service is still restored, on the same responder port.
 */
export function decideService(
  service: V1Service,
  old: V1Service | undefined,
  requestNamespace: string | undefined,
  usedPorts: (serviceKey: string) => ReadonlySet<number>,
): ServiceDecision {
  const meta = service.metadata ?? {};
  const namespace = meta.namespace || requestNamespace || 'default';
  const name = meta.name ?? '';
  const annotations = meta.annotations ?? {};
  const oldAnnotations = old?.metadata?.annotations ?? {};
  const wanted = optIn(meta.labels, annotations);
  if (!wanted.ok) return { kind: 'refuse', message: wanted.problems.join('; ') };
  const warnings = wanted.value.deprecation ? [wanted.value.deprecation] : [];
  const savedRaw = annotations[ANNOTATIONS.originalService] ?? oldAnnotations[ANNOTATIONS.originalService];
  const saved = savedRaw === undefined ? null : parseOriginal(savedRaw);
  if (savedRaw !== undefined && saved === null) {
    return { kind: 'refuse', message: `${ANNOTATIONS.originalService} is not valid JSON; restore the Service's selector by hand and remove it` };
  }
  const changes = userChanges(service, old);

  if (!wanted.value.value) {
    if (saved === null) return { kind: 'skip', reason: `no ${LABELS.inject}: "true" label` };
    return restore(service, saved, changes);
  }

  const parsed = parseServiceSettings(annotations);
  if (!parsed.ok) return { kind: 'refuse', message: parsed.problems.join('; ') };
  const spec = service.spec ?? {};
  if (spec.type === 'ExternalName') return { kind: 'refuse', message: `${LABELS.inject}: an ExternalName Service has no traffic to queue` };
  if (spec.clusterIP === 'None') {
    return { kind: 'refuse', message: `${LABELS.inject}: a headless Service (clusterIP: None) cannot be queued: clients connect to pod IPs directly` };
  }
  const ports = spec.ports ?? [];
  if (ports.length === 0) return { kind: 'refuse', message: `${LABELS.inject}: the Service has no ports` };
  const nonTcp = ports.find((p) => (p.protocol ?? 'TCP') !== 'TCP');
  if (nonTcp) return { kind: 'refuse', message: `${LABELS.inject}: port ${nonTcp.port} is ${nonTcp.protocol}; only TCP (HTTP) ports can be queued` };
  if (!name) return { kind: 'refuse', message: `${LABELS.inject}: the Service needs a name (generateName is not supported)` };

  const key = `${namespace}/${name}`;
  const currentRaw = annotations[ANNOTATIONS.responderPort] ?? oldAnnotations[ANNOTATIONS.responderPort];
  const current = currentRaw !== undefined && /^\d+$/.test(currentRaw) ? Number(currentRaw) : undefined;
  const responderPort = allocateResponderPort(key, current, usedPorts(key));
  if (responderPort === null) return { kind: 'refuse', message: 'kueuer: every responder port is in use; no more Services can be queued' };

  // The first rewrite records what it replaces; later ones keep that record, updated with what the user changes.
  const original = recordOriginal(service, saved, changes);

  const desired = structuredClone(service);
  desired.metadata ??= {};
  desired.metadata.annotations = {
    ...desired.metadata.annotations,
    [ANNOTATIONS.originalService]: JSON.stringify(original),
    [ANNOTATIONS.responderPort]: String(responderPort),
  };
  desired.spec ??= {};
  delete desired.spec.selector;
  desired.spec.ports = ports.map((p): V1ServicePort => ({ ...p, targetPort: responderPort }));
  return {
    kind: 'patch',
    patch: jsonpatch.compare(service as object, desired as object),
    responderPort,
    queue: serviceQueue(namespace, name, parsed.value.queue),
    warnings,
  };
}

/** The Service as it was before queuing, except where this request sets a selector or target port of its own. */
function restore(service: V1Service, original: OriginalService, changes: UserChanges): ServiceDecision {
  const desired = structuredClone(service);
  const annotations = { ...desired.metadata?.annotations };
  delete annotations[ANNOTATIONS.originalService];
  delete annotations[ANNOTATIONS.responderPort];
  desired.metadata = { ...desired.metadata, annotations };
  desired.spec ??= {};
  const selector = changes.selector ?? original.selector;
  if (selector) desired.spec.selector = selector;
  desired.spec.ports = (desired.spec.ports ?? []).map((p) => {
    if (changes.targetPorts.has(p.port)) return p;
    const was = original.targetPorts.find((t) => t.port === p.port);
    const restored: V1ServicePort = { ...p };
    if (was?.targetPort !== null && was?.targetPort !== undefined) restored.targetPort = was.targetPort;
    else delete restored.targetPort;
    return restored;
  });
  return { kind: 'patch', patch: jsonpatch.compare(service as object, desired as object), responderPort: null, queue: null, warnings: [] };
}

/** Where a decided responder port is made the Service's own before the answer (a cluster-wide reservation). */
export interface PortReservations {
  reserve(serviceKey: string, port: number): Promise<boolean>;
}

/** Each failed attempt means another Service took the port tried; that many Services admitted at the same moment. */
const RESERVE_ATTEMPTS = 20;

/**
 * decideService, then the port reserved: when another replica reserved the same port for another
 * Service first, decide again (the registry now counts that port as used).
 */
export async function decideServiceReserved(
  service: V1Service,
  old: V1Service | undefined,
  requestNamespace: string | undefined,
  usedPorts: (serviceKey: string) => ReadonlySet<number>,
  reservations: PortReservations | undefined,
): Promise<ServiceDecision> {
  const key = `${service.metadata?.namespace || requestNamespace || 'default'}/${service.metadata?.name ?? ''}`;
  for (let attempt = 0; attempt < RESERVE_ATTEMPTS; attempt++) {
    const decision = decideService(service, old, requestNamespace, usedPorts);
    if (decision.kind !== 'patch' || decision.responderPort === null || !reservations) return decision;
    if (await reservations.reserve(key, decision.responderPort)) return decision;
  }
  return { kind: 'refuse', message: 'could not reserve a responder port: other Services took each port tried; retry' };
}
