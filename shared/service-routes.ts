/**
 * Which responder port serves which queue, read from the annotations the
 * webhook writes on Services. The webhook uses it to hand out free ports, the
 * responder to know which ports to open and where each one's requests go.
 * Pure: given Services, returns routes.
 */
import type { V1Service } from '@kubernetes/client-node';
import { ANNOTATIONS, parseServiceSettings, wantsInjection, type AsyncMode } from './annotations.js';
import { serviceQueue } from './queue-names.js';

export interface Route {
  /** `namespace/name` of the Service. */
  service: string;
  port: number;
  queue: string;
  /** From the Service's kueuer.io/timeout; else the responder's --timeout. */
  timeoutMs?: number;
  /** From the Service's kueuer.io/async and kueuer.io/async-result-ttl; absent when off. */
  async?: { mode: Exclude<AsyncMode, 'off'>; resultTtlMs?: number; callbacks?: CallbackAnnotations };
}

/** The Service's callback annotations as written; the responder parses them once per route start (responder/callbacks/). */
export type CallbackAnnotations = Partial<Record<typeof ANNOTATIONS.asyncCallbackAllow | typeof ANNOTATIONS.asyncCallbackSecret, string>>;

function callbackAnnotations(a: Record<string, string> | undefined): CallbackAnnotations | undefined {
  const out: CallbackAnnotations = {};
  for (const name of [ANNOTATIONS.asyncCallbackAllow, ANNOTATIONS.asyncCallbackSecret] as const) if (a?.[name] !== undefined) out[name] = a[name];
  return Object.keys(out).length > 0 ? out : undefined;
}

export interface RouteTable {
  routes: Route[];
  /** Services that could not get their port because an older Service holds it. */
  conflicts: Array<{ service: string; port: number; heldBy: string }>;
}

function key(s: V1Service): string {
  return `${s.metadata?.namespace ?? 'default'}/${s.metadata?.name ?? ''}`;
}

function responderPortOf(s: V1Service): number | undefined {
  const a = s.metadata?.annotations;
  // Opted in by the label kueuer.io/inject: "true" (or the deprecated annotation), as the webhook decides.
  const wanted = wantsInjection(a, s.metadata?.labels);
  if (!a || !wanted.ok || !wanted.value) return undefined;
  const raw = a[ANNOTATIONS.responderPort];
  return raw !== undefined && /^\d+$/.test(raw) ? Number(raw) : undefined;
}

export function routesFromServices(services: readonly V1Service[]): RouteTable {
  const annotated = services
    .filter((s) => responderPortOf(s) !== undefined)
    // The oldest claim on a port wins a conflict.
    .sort((a, b) => String(a.metadata?.creationTimestamp ?? '').localeCompare(String(b.metadata?.creationTimestamp ?? '')) || key(a).localeCompare(key(b)));
  const byPort = new Map<number, Route>();
  const conflicts: RouteTable['conflicts'] = [];
  for (const s of annotated) {
    const port = responderPortOf(s)!;
    const holder = byPort.get(port);
    if (holder) {
      conflicts.push({ service: key(s), port, heldBy: holder.service });
      continue;
    }
    const settings = parseServiceSettings(s.metadata?.annotations);
    const value = settings.ok ? settings.value : {};
    const route: Route = { service: key(s), port, queue: serviceQueue(s.metadata?.namespace ?? 'default', s.metadata?.name ?? '', value.queue) };
    if (value.timeoutMs !== undefined) route.timeoutMs = value.timeoutMs;
    if (value.asyncMode !== undefined && value.asyncMode !== 'off') {
      const callbacks = callbackAnnotations(s.metadata?.annotations);
      route.async = {
        mode: value.asyncMode,
        ...(value.asyncResultTtlMs !== undefined ? { resultTtlMs: value.asyncResultTtlMs } : {}),
        ...(callbacks ? { callbacks } : {}),
      };
    }
    byPort.set(port, route);
  }
  return { routes: [...byPort.values()].sort((a, b) => a.port - b.port), conflicts };
}

/** Responder ports held by Services other than `exceptServiceKey`. */
export function usedResponderPorts(services: readonly V1Service[], exceptServiceKey: string): Set<number> {
  const used = new Set<number>();
  for (const s of services) {
    if (key(s) === exceptServiceKey) continue;
    const port = responderPortOf(s);
    if (port !== undefined) used.add(port);
  }
  return used;
}
