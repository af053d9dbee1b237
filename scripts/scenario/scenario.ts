/**
 * One variant of a scenario, end to end: a fresh node set up as the variant
 * (variants.ts), the plan's load from vegeta (vegeta.ts) against the app's
 * Service ClusterIP, the sampler (sampler.ts) every second from the load's
 * start until the last request is answered or timed out and the backlog is
 * empty (or 60 s more), then the summary (results.ts).
 */
import { mkdirSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import type { ImagesJson } from '../../test/helpers/images.js';
import type { AppProfile, PlannedStage } from './plan.js';
import {
  collectLogs,
  nodeCapacity,
  parseAppCalls,
  parseSidecarEvents,
  podEvents,
  requestFates,
  summarizeLogs,
  type AppCall,
  type LogSummary,
  type PodEvent,
} from './logs.js';
import { summarize, type RequestRecord, type Sample, type Summary } from './results.js';
import { startSampler } from './sampler.js';
import { runPlan } from './vegeta.js';
import { withVariant, type Tools, type VariantId } from './variants.js';

export interface VariantRun {
  variant: VariantId;
  startedAt: string;
  requests: RequestRecord[];
  samples: Sample[];
  summary: Summary;
  notes: string[];
  /** The machine's 1-minute load average when the load started and when it ended. */
  loadAvg: [number, number];
  /** The command line that ran it (written by run.ts). */
  command?: string;
  /** Every call of the app (its access log), the pods' lives and the sidecars' consumer-group events, and their numbers. */
  calls?: AppCall[];
  podEvents?: PodEvent[];
  logs?: LogSummary;
}

/** The responder's request timeout (its default): a request's deadline is its arrival plus this. */
const RESPONDER_TIMEOUT_S = 60;

export interface RunOptions {
  tools: Tools & { vegeta: string };
  images: ImagesJson;
  app: AppProfile;
  plan: PlannedStage[];
  maxReplicas: number;
  clientTimeoutS: number;
  /** Where vegeta's binary results go. */
  workDir: string;
}

export async function runVariant(options: RunOptions, variant: VariantId): Promise<VariantRun> {
  const { tools, images, app, plan } = options;
  mkdirSync(options.workDir, { recursive: true });
  return withVariant(tools, images, variant, { app: app.name, maxReplicas: options.maxReplicas }, async (ctx) => {
    const startedAt = new Date().toISOString();
    const load1 = loadavg()[0]!;
    const vegeta = runPlan(tools.vegeta, plan, ctx.url, options.workDir, options.clientTimeoutS);
    const sampler = startSampler(
      { server: ctx.cluster.controlPlane.server, certs: ctx.cluster.controlPlane.certs },
      { namespace: ctx.namespace, deployment: app.name, hpa: ctx.hpa, queue: ctx.queue },
      vegeta.startMs,
    );
    let requests: RequestRecord[] = [];
    let failure: Error | null = null;
    try {
      requests = await vegeta.done;
      // Keep sampling a little after the last answer: the replicas as the load left them.
      await new Promise((r) => setTimeout(r, 10_000));
    } catch (err) {
      failure = err as Error;
    }
    // The sampler stops whatever happens (a failed attack must not leave it polling).
    const samples = await sampler.stop();
    if (failure) throw failure;
    // What the pods said, before the node goes (raw logs in the work directory).
    const kubectl = (...args: string[]) => ctx.cluster.controlPlane.kubectl(args);
    const collected = collectLogs(kubectl, ctx.namespace, join(options.workDir, 'logs', ctx.namespace));
    const system = ctx.queue ? collectLogs(kubectl, 'kueuer-system', join(options.workDir, 'logs', 'kueuer-system')) : null;
    const nodes = ctx.cluster.controlPlane.tryGetJson('nodes') as { items?: Array<{ status?: { allocatable?: Record<string, string> } }> } | null;
    const allPods = ctx.cluster.controlPlane.tryGetJson('pods', '-A') as { items?: Parameters<typeof nodeCapacity>[1] } | null;
    if (nodes?.items?.[0] && allPods?.items) ctx.notes.push(nodeCapacity(nodes.items[0], allPods.items, ctx.namespace));
    const calls: AppCall[] = [];
    const events: PodEvent[] = podEvents(collected, vegeta.startMs);
    for (const [pod, containers] of Object.entries(collected.logs)) {
      for (const [container, text] of Object.entries(containers)) {
        if (container === 'app') calls.push(...parseAppCalls(pod, text, vegeta.startMs, RESPONDER_TIMEOUT_S));
        else events.push(...parseSidecarEvents(pod, text, vegeta.startMs));
      }
    }
    events.sort((a, b) => a.t - b.t);
    const responderLog = Object.values(system?.logs ?? {})
      .flatMap((c) => Object.values(c))
      .join('\n');
    const logs = summarizeLogs(requestFates(requests, calls), calls, events, responderLog);
    const spike = plan.reduce((a, b) => (b.users > a.users ? b : a));
    const summary = summarize(requests, samples, spike.startS);
    console.log(`${app.name} (${variant}): ${JSON.stringify(summary)} ${JSON.stringify(logs)}`);
    return { variant, startedAt, requests, samples, summary, notes: ctx.notes, loadAvg: [load1, loadavg()[0]!], calls, podEvents: events, logs };
  });
}
