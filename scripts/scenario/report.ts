/**
 * The markdown page of a scenario's numbers (docs/scenarios/<app>.md): when,
 * on what machine, with which command and under what load on the machine;
 * the plan (stages, rates, compression); one row per variant; the picture.
 * Pure: takes what the runs recorded, returns text.
 */
import type { AppProfile, PlannedStage } from './plan.js';
import type { VariantRun } from './scenario.js';
import { VARIANT_TITLES } from './variants.js';

export interface Machine {
  cpus: number;
  cpuModel: string;
  memoryGiB: number;
  kernel: string;
}

export interface ReportInput {
  app: AppProfile;
  plan: readonly PlannedStage[];
  factor: number;
  maxReplicas: number;
  clientTimeoutS: number;
  ratePerUser: number;
  runs: readonly VariantRun[];
  machine: Machine;
  command: string;
  picture: string;
}

const s1 = (v: number | null) => (v === null ? '–' : `${v.toFixed(1)} s`);
const causes = (c: Record<string, number>) =>
  Object.keys(c).length
    ? Object.entries(c)
        .map(([k, n]) => `${k} ${n}`)
        .join(', ')
    : '–';

/** Stage users and durations as the report gives them, and as run. */
export function planTable(plan: readonly PlannedStage[], factor: number): string {
  return [
    '| stage | users | report | here | rate (req/s) | starts at |',
    '|---|---|---|---|---|---|',
    ...plan.map((s) => `| ${s.name} | ${s.users} | ${s.seconds} s | ${s.durationS.toFixed(1)} s | ${s.rate.toFixed(2)} | ${s.startS.toFixed(1)} s |`),
    `| total | | ${plan.reduce((a, s) => a + s.seconds, 0)} s | ${plan.reduce((a, s) => a + s.durationS, 0).toFixed(1)} s (÷ ${factor}) | | |`,
  ].join('\n');
}

export function resultsTable(runs: readonly VariantRun[]): string {
  return [
    '| run | sent | answered | failed (by cause) | lost | p50 | p95 | max | spike → first new replica Ready | most replicas (ready) | most backlog | machine load (1 min, start → end) |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...runs.map((r) => {
      const s = r.summary;
      return `| ${VARIANT_TITLES[r.variant]} | ${s.sent} | ${s.answered} | ${s.failed} (${causes(s.failedByCause)}) | ${s.lostPercent.toFixed(2)} % | ${s1(s.p50S)} | ${s1(s.p95S)} | ${s1(s.maxS)} | ${s1(s.spikeToNewReadyS)} | ${s.maxReady} | ${s.maxBacklog ?? '–'} | ${r.loadAvg[0].toFixed(1)} → ${r.loadAvg[1].toFixed(1)} |`;
    }),
  ].join('\n');
}

/** What the pods' logs say about each run that kept them (scripts/scenario/logs.ts). */
export function logsTable(runs: readonly VariantRun[]): string {
  const withLogs = runs.filter((r) => r.logs);
  if (withLogs.length === 0) return '';
  const waits = (w: readonly number[]) =>
    w.length === 0
      ? '–'
      : w.length <= 5
        ? w.map((x) => x.toFixed(0)).join(', ') + ' s'
        : `${w[0]!.toFixed(0)}–${w[w.length - 1]!.toFixed(0)} s (median ${w[Math.floor((w.length - 1) / 2)]!.toFixed(0)} s)`;
  return [
    '| run | app calls | requests run twice | calls marked rerun | consumer-group joins | partitions revoked | container restarts | failed probes | late replies dropped | lost: never reached the app | lost: run twice | lost: wait from arrival to the app’s first call |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...withLogs.map((r) => {
      const l = r.logs!;
      return `| ${VARIANT_TITLES[r.variant]} | ${l.appCalls} | ${l.ranTwice} | ${l.redelivered} | ${l.groupJoins} | ${l.revocations} | ${l.restarts} | ${l.probeFailures} | ${l.lateReplies} | ${l.lostNeverCalled} | ${l.lostCalledTwice} | ${waits(l.lostWaitS)} |`;
    }),
  ].join('\n');
}

export function scenarioPage(input: ReportInput): string {
  const { app, plan, runs } = input;
  const m = input.machine;
  const meanHostCpu = (r: VariantRun) => {
    const v = r.samples.map((x) => x.hostCpuPercent).filter((x): x is number => x !== null);
    return v.length ? `${Math.round(v.reduce((a, b) => a + b, 0) / v.length)} %` : '–';
  };
  return [
    `# Scenario \`${app.name}\`: ${app.describe}`,
    '',
    `![${app.name}: (a) beside (b) and (c)](${input.picture})`,
    '',
    'Top row: every request at the time it was sent, by how long it took, coloured by outcome. Bottom row: ready replicas,',
    'the HPA’s desired replicas, and Kueuer’s backlog (in (a): the app pods’ CPU, what its HPA scales on). Dotted lines: stage boundaries.',
    '',
    '## Numbers',
    '',
    resultsTable(runs),
    '',
    'Latency quantiles are over answered requests. Lost = failed / sent. "spike → first new replica Ready": from the start of',
    'the spike stage to the first second the Deployment had more ready replicas than when the spike began (sampled every second).',
    '',
    ...(logsTable(runs)
      ? [
          '## What the pods said',
          '',
          logsTable(runs),
          '',
          `From each pod's logs, read after the load (\`data/${app.name}/<run>-calls.tsv\`: every call of the app with the client request it belonged to; \`<run>-pods.tsv\`: pods created and Ready, sidecars joining their consumer group and losing partitions, restarts, failed probes).`,
          'A client request is matched with the app’s calls by its arrival time (the request’s deadline minus the responder’s 60 s timeout).',
          '',
        ]
      : []),
    '## How it ran',
    '',
    `- **When**: ${runs.map((r) => `(${r.variant}) ${r.startedAt}`).join(', ')}.`,
    `- **Machine**: ${m.cpus} vCPU (${m.cpuModel}), ${m.memoryGiB} GiB, Linux ${m.kernel}; shared with other work. Mean busy CPU of the whole machine during each run: ${runs.map((r) => `(${r.variant}) ${meanHostCpu(r)}`).join(', ')}.`,
    `- **Command**: \`${input.command}\``,
    `- **Load**: vegeta v12.13.0, open loop, one new connection per request, client timeout ${input.clientTimeoutS} s, \`GET /\` to the Service's ClusterIP.`,
    `  Stages compressed ${input.factor}× (the report's 14 min 40 s in ${(plan.reduce((a, s) => a + s.durationS, 0) / 60).toFixed(1)} min), shape kept; request durations are not compressed.`,
    `  One user = ${input.ratePerUser.toFixed(4)} requests/s: the 100-user spike is what ${input.maxReplicas} replicas serve one request at a time at the app's mean ${app.meanWorkSeconds} s (${input.maxReplicas} / ${app.meanWorkSeconds} s), the most closed-loop users could get answered.`,
    '',
    planTable(plan, input.factor),
    '',
    ...(runs.some((r) => r.notes.length) ? ['Notes from the setup:', '', ...runs.flatMap((r) => r.notes.map((n) => `- (${r.variant}) ${n}`)), ''] : []),
  ].join('\n');
}
