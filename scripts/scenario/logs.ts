/**
 * What the pods said during a scenario run, read once the load is over and
 * before the node stops: every container's log (the previous instance's too
 * when it restarted), the namespace's events, and the pods' start and Ready
 * times. The raw text goes to the run's work directory; what the numbers need
 * is parsed here, by pure functions:
 *
 * - the app's access log (test/scenario-apps/*.mjs: one JSON line per request,
 *   with its headers): every call of the app, with Kueuer's request id, its
 *   deadline and whether the sidecar marked it a rerun (x-kueuer-redelivered);
 * - the sidecar's log (pino JSON): each time it joined its consumer group (on
 *   Kafka, with the partitions it got) and each partition it lost;
 * - each pod's creation, Ready time and container restarts.
 *
 * Kueuer's request id never reaches the client, so a client's request is
 * matched with the app's calls by time: the responder sets a request's
 * deadline to its arrival plus its timeout, so deadline − timeout is when the
 * client's request arrived.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RequestRecord } from './results.js';

/** One call of the app, from its access log; times in seconds from the load's start. */
export interface AppCall {
  pod: string;
  startS: number;
  workedS: number;
  /** Kueuer's request id (x-kueuer-request-id); '' without Kueuer. */
  reqId: string;
  /** The sidecar marked it a possible rerun (x-kueuer-redelivered: true). */
  redelivered: boolean;
  /** When the responder took the client's request: deadline − the responder's timeout; null without Kueuer. */
  arrivedS: number | null;
}

/** What a sidecar logged about its consumer group, or a pod's life: seconds from the load's start. */
export interface PodEvent {
  t: number;
  pod: string;
  event: 'created' | 'ready' | 'sidecar-ready' | 'joined' | 'revoked' | 'restarted' | 'probe-failed';
  detail: string;
}

interface PodJson {
  metadata: { name: string; creationTimestamp: string };
  spec: { containers: Array<{ name: string }>; initContainers?: Array<{ name: string }> };
  status?: {
    conditions?: Array<{ type: string; status: string; lastTransitionTime: string }>;
    containerStatuses?: Array<{ name: string; restartCount: number }>;
    initContainerStatuses?: Array<{ name: string; restartCount: number }>;
  };
}

export interface Kubectl {
  (...args: string[]): { code: number; stdout: string; stderr: string };
}

export interface CollectedLogs {
  /** pod → container → log text (the previous instance's first, when there was one). */
  logs: Record<string, Record<string, string>>;
  pods: PodJson[];
  /** `kubectl get events -o json` items of the namespace. */
  events: Array<{ reason?: string; message?: string; lastTimestamp?: string; eventTime?: string; involvedObject?: { name?: string } }>;
}

/** Reads every container's log of every pod in `namespace` (and writes them under `dir`). */
export function collectLogs(kubectl: Kubectl, namespace: string, dir: string): CollectedLogs {
  mkdirSync(dir, { recursive: true });
  const podList = kubectl('get', 'pods', '-n', namespace, '-o', 'json');
  const pods = podList.code === 0 ? ((JSON.parse(podList.stdout) as { items: PodJson[] }).items ?? []) : [];
  const logs: CollectedLogs['logs'] = {};
  for (const pod of pods) {
    const name = pod.metadata.name;
    logs[name] = {};
    const statuses = [...(pod.status?.containerStatuses ?? []), ...(pod.status?.initContainerStatuses ?? [])];
    for (const c of [...(pod.spec.initContainers ?? []), ...pod.spec.containers]) {
      const restarts = statuses.find((s) => s.name === c.name)?.restartCount ?? 0;
      const previous = restarts > 0 ? kubectl('logs', '-n', namespace, name, '-c', c.name, '--previous').stdout : '';
      const text = previous + kubectl('logs', '-n', namespace, name, '-c', c.name).stdout;
      logs[name][c.name] = text;
      writeFileSync(join(dir, `${name}.${c.name}.log`), text);
    }
  }
  const eventList = kubectl('get', 'events', '-n', namespace, '-o', 'json');
  const events = eventList.code === 0 ? ((JSON.parse(eventList.stdout) as { items: CollectedLogs['events'] }).items ?? []) : [];
  writeFileSync(join(dir, 'pods.json'), JSON.stringify(pods, null, 1));
  writeFileSync(join(dir, 'events.json'), JSON.stringify(events, null, 1));
  return { logs, pods, events };
}

const jsonLines = (text: string): Array<Record<string, unknown>> =>
  text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as Record<string, unknown>];
      } catch {
        return [];
      }
    });

const secondsFrom = (startMs: number, at: number | string) => Math.round(((typeof at === 'number' ? at : Date.parse(at)) - startMs) / 100) / 10;

/** The app's calls from its access log lines; `timeoutS` is the responder's request timeout. */
export function parseAppCalls(pod: string, text: string, startMs: number, timeoutS: number): AppCall[] {
  return jsonLines(text)
    .filter((l) => typeof l.start === 'string' && typeof l.workedMs === 'number')
    .map((l) => {
      const headers = (l.headers ?? {}) as Record<string, string | undefined>;
      const deadline = headers['x-kueuer-deadline'];
      return {
        pod,
        startS: secondsFrom(startMs, l.start as string),
        workedS: (l.workedMs as number) / 1000,
        reqId: headers['x-kueuer-request-id'] ?? '',
        redelivered: headers['x-kueuer-redelivered'] === 'true',
        arrivedS: deadline ? Math.round((secondsFrom(startMs, deadline) - timeoutS) * 10) / 10 : null,
      };
    });
}

/** The sidecar's consumer-group lines (pino JSON, `time` in epoch ms). */
export function parseSidecarEvents(pod: string, text: string, startMs: number): PodEvent[] {
  const out: PodEvent[] = [];
  for (const l of jsonLines(text)) {
    if (typeof l.time !== 'number') continue;
    const t = secondsFrom(startMs, l.time);
    if (l.msg === 'joined the consumer group') out.push({ t, pod, event: 'joined', detail: `partitions ${JSON.stringify(l.partitions ?? [])}` });
    else if (typeof l.msg === 'string' && l.msg.startsWith('partition revoked'))
      out.push({ t, pod, event: 'revoked', detail: `partition ${String(l.partition)}` });
    else if (l.msg === 'sidecar ready') out.push({ t, pod, event: 'sidecar-ready', detail: '' });
  }
  return out;
}

/** Each pod's creation and Ready time, restarts, and failed probes from the events. */
export function podEvents(collected: Pick<CollectedLogs, 'pods' | 'events'>, startMs: number): PodEvent[] {
  const out: PodEvent[] = [];
  for (const p of collected.pods) {
    const pod = p.metadata.name;
    out.push({ t: secondsFrom(startMs, p.metadata.creationTimestamp), pod, event: 'created', detail: '' });
    const ready = p.status?.conditions?.find((c) => c.type === 'Ready' && c.status === 'True');
    if (ready) out.push({ t: secondsFrom(startMs, ready.lastTransitionTime), pod, event: 'ready', detail: '' });
    for (const s of [...(p.status?.containerStatuses ?? []), ...(p.status?.initContainerStatuses ?? [])])
      if (s.restartCount > 0)
        out.push({
          t: secondsFrom(startMs, ready?.lastTransitionTime ?? p.metadata.creationTimestamp),
          pod,
          event: 'restarted',
          detail: `${s.name} ×${s.restartCount}`,
        });
  }
  for (const e of collected.events) {
    if (e.reason !== 'Unhealthy' && e.reason !== 'Killing') continue;
    const at = e.lastTimestamp ?? e.eventTime;
    if (!at) continue;
    out.push({
      t: secondsFrom(startMs, at),
      pod: e.involvedObject?.name ?? '',
      event: 'probe-failed',
      detail: `${e.reason}: ${(e.message ?? '').split('\n')[0]}`,
    });
  }
  return out.sort((a, b) => a.t - b.t);
}

/** What became of one client request inside Kueuer. */
export interface RequestFate {
  startS: number;
  outcome: RequestRecord['outcome'];
  latencyS: number;
  reqId: string | null;
  /** The app's calls for it, in order. */
  calls: AppCall[];
}

/**
 * Matches each client request with the app calls of the Kueuer request that arrived closest to it
 * (within `withinS`), each Kueuer request used once; requests the app never saw get no id.
 */
export function requestFates(requests: readonly RequestRecord[], calls: readonly AppCall[], withinS = 1): RequestFate[] {
  const byId = new Map<string, AppCall[]>();
  for (const c of calls) if (c.reqId) byId.set(c.reqId, [...(byId.get(c.reqId) ?? []), c]);
  const arrivals = [...byId.entries()].map(([id, cs]) => ({ id, arrivedS: cs[0]!.arrivedS ?? Number.NaN, calls: cs.sort((a, b) => a.startS - b.startS) }));
  const used = new Set<string>();
  return [...requests]
    .sort((a, b) => a.startS - b.startS)
    .map((r) => {
      let best: (typeof arrivals)[number] | null = null;
      for (const a of arrivals) {
        if (used.has(a.id) || !(Math.abs(a.arrivedS - r.startS) <= withinS)) continue;
        if (!best || Math.abs(a.arrivedS - r.startS) < Math.abs(best.arrivedS - r.startS)) best = a;
      }
      if (best) used.add(best.id);
      return { startS: r.startS, outcome: r.outcome, latencyS: r.latencyS, reqId: best?.id ?? null, calls: best?.calls ?? [] };
    });
}

/** What the logs say in numbers: app calls, reruns, group joins and revocations, restarts. */
export interface LogSummary {
  appCalls: number;
  /** Kueuer requests the app ran more than once. */
  ranTwice: number;
  /** Calls marked x-kueuer-redelivered. */
  redelivered: number;
  groupJoins: number;
  revocations: number;
  restarts: number;
  probeFailures: number;
  /** Replies the responder dropped because their client was already answered or gone. */
  lateReplies: number;
  /** Lost client requests: never reached the app / first call started only after N s / ran more than once. */
  lostNeverCalled: number;
  lostCalledTwice: number;
  /** Of the lost requests the app saw: the wait from arrival to its first call, seconds (sorted). */
  lostWaitS: number[];
}

export function summarizeLogs(fates: readonly RequestFate[], calls: readonly AppCall[], events: readonly PodEvent[], responderLog = ''): LogSummary {
  const perId = new Map<string, number>();
  for (const c of calls) if (c.reqId) perId.set(c.reqId, (perId.get(c.reqId) ?? 0) + 1);
  const lost = fates.filter((f) => f.outcome !== 'answered');
  return {
    appCalls: calls.length,
    ranTwice: [...perId.values()].filter((n) => n > 1).length,
    redelivered: calls.filter((c) => c.redelivered).length,
    groupJoins: events.filter((e) => e.event === 'joined').length,
    revocations: events.filter((e) => e.event === 'revoked').length,
    restarts: events.filter((e) => e.event === 'restarted').length,
    probeFailures: events.filter((e) => e.event === 'probe-failed').length,
    lateReplies: jsonLines(responderLog).filter((l) => typeof l.msg === 'string' && l.msg.startsWith('dropped a late reply')).length,
    lostNeverCalled: lost.filter((f) => f.calls.length === 0).length,
    lostCalledTwice: lost.filter((f) => f.calls.length > 1).length,
    lostWaitS: lost
      .filter((f) => f.calls.length > 0)
      .map((f) => Math.round((f.calls[0]!.startS - f.startS) * 10) / 10)
      .sort((a, b) => a - b),
  };
}

/** `<run>-calls.tsv`: every app call, and the client request it belonged to. */
export function callsTsv(fates: readonly RequestFate[], calls: readonly AppCall[]): string {
  const clientOf = new Map<string, RequestFate>();
  for (const f of fates) if (f.reqId) clientOf.set(f.reqId, f);
  const rows = [...calls]
    .sort((a, b) => a.startS - b.startS)
    .map((c) => {
      const f = c.reqId ? clientOf.get(c.reqId) : undefined;
      return [
        c.startS.toFixed(1),
        c.workedS.toFixed(1),
        c.pod,
        c.redelivered ? 'yes' : 'no',
        c.arrivedS?.toFixed(1) ?? '',
        f ? f.startS.toFixed(1) : '',
        f?.outcome ?? '',
        c.reqId,
      ].join('\t');
    });
  return ['# call_start_s\tworked_s\tpod\tredelivered\tarrived_s\tclient_start_s\tclient_outcome\treq_id', ...rows].join('\n') + '\n';
}

/** `<run>-pods.tsv`: the pods' lives and the sidecars' consumer-group events, in time order. */
export function eventsTsv(events: readonly PodEvent[]): string {
  return (
    ['# t_s\tpod\tevent\tdetail', ...[...events].sort((a, b) => a.t - b.t).map((e) => `${e.t.toFixed(1)}\t${e.pod}\t${e.event}\t${e.detail}`)].join('\n') + '\n'
  );
}

interface NodePodJson {
  metadata: { namespace: string };
  spec: {
    containers: Array<{ resources?: { requests?: Record<string, string> } }>;
    initContainers?: Array<{ resources?: { requests?: Record<string, string> } }>;
  };
  status?: { phase?: string; conditions?: Array<{ type: string; status: string }> };
}

/** A Kubernetes quantity ("250m", "64Mi", "1Gi", "2") as a number (cores, bytes). */
export function quantity(q: string | undefined): number {
  const m = /^([0-9.]+)(m|Ki|Mi|Gi|k|M|G)?$/.exec((q ?? '0').trim());
  if (!m) return 0;
  const scale: Record<string, number> = { m: 1e-3, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, k: 1e3, M: 1e6, G: 1e9 };
  return Number(m[1]) * (m[2] ? scale[m[2]]! : 1);
}

/** The node's allocatable CPU and memory, what all its pods request, and the app's pods Ready, Running and Pending. */
export function nodeCapacity(node: { status?: { allocatable?: Record<string, string> } }, pods: readonly NodePodJson[], namespace: string): string {
  const live = pods.filter((p) => p.status?.phase !== 'Succeeded' && p.status?.phase !== 'Failed');
  const sum = (what: string) =>
    live.reduce((a, p) => a + [...p.spec.containers, ...(p.spec.initContainers ?? [])].reduce((b, c) => b + quantity(c.resources?.requests?.[what]), 0), 0);
  const app = live.filter((p) => p.metadata.namespace === namespace);
  const ready = app.filter((p) => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')).length;
  const pending = app.filter((p) => p.status?.phase === 'Pending').length;
  const cpu = quantity(node.status?.allocatable?.cpu);
  const mem = quantity(node.status?.allocatable?.memory);
  return (
    `node at the end: allocatable ${cpu} CPU, ${(mem / 2 ** 30).toFixed(1)} GiB; pods request ${Math.round(sum('cpu') * 1000)}m CPU (${Math.round((100 * sum('cpu')) / cpu)} %), ` +
    `${(sum('memory') / 2 ** 30).toFixed(1)} GiB; app pods ${app.length}: ${ready} Ready, ${pending} Pending`
  );
}
