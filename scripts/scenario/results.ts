/**
 * What a scenario run recorded, and the numbers drawn from it. Pure functions:
 * vegeta's results (`vegeta encode --to json`, one JSON object a line) become
 * Request records; the per-second samples (scripts/scenario/sampler.ts) and
 * the requests become the run's summary.
 */

/** One request as vegeta recorded it. `startS` is seconds from the start of the load. */
export interface RequestRecord {
  stage: string;
  startS: number;
  latencyS: number;
  code: number;
  error: string;
  outcome: Outcome;
}

/** answered: a 200. Otherwise the cause of the loss. */
export type Outcome = 'answered' | 'client-timeout' | 'refused' | 'reset' | `http-${number}` | 'other-error';

/** One second of the cluster, as the sampler read it from the apiserver. null: not available (no metric). */
export interface Sample {
  t: number;
  ready: number;
  /** The Deployment's spec.replicas. */
  replicas: number;
  /** The HPA's status.desiredReplicas. */
  desired: number | null;
  /** kueuer_queue_backlog from external.metrics.k8s.io (Kueuer's runs only). */
  backlog: number | null;
  /** The app pods' CPU, millicores (metrics.k8s.io, metrics-server). */
  cpuMillis: number | null;
  /** The whole machine's busy CPU, % of all cores (/proc/stat). */
  hostCpuPercent: number | null;
}

/** The cause of a failed request from vegeta's code and error text. */
export function classify(code: number, error: string): Outcome {
  if (code === 200 && !error) return 'answered';
  if (code > 0) return `http-${code}`;
  const e = error.toLowerCase();
  if (e.includes('timeout') || e.includes('deadline exceeded')) return 'client-timeout';
  if (e.includes('connection refused')) return 'refused';
  if (e.includes('reset by peer') || e.includes('eof') || e.includes('broken pipe')) return 'reset';
  return 'other-error';
}

interface VegetaResult {
  attack: string;
  code: number;
  timestamp: string;
  latency: number;
  error: string;
}

/** Parses `vegeta encode --to json` output; times are relative to `loadStartMs` (epoch ms). */
export function parseVegeta(jsonLines: string, loadStartMs: number): RequestRecord[] {
  const records: RequestRecord[] = [];
  for (const line of jsonLines.split('\n')) {
    if (!line.trim()) continue;
    const r = JSON.parse(line) as VegetaResult;
    records.push({
      stage: r.attack,
      startS: (Date.parse(r.timestamp) - loadStartMs) / 1000,
      latencyS: r.latency / 1e9,
      code: r.code,
      error: r.error ?? '',
      outcome: classify(r.code, r.error ?? ''),
    });
  }
  return records.sort((a, b) => a.startS - b.startS);
}

/** The value at quantile q (0..1) of sorted numbers, nearest rank. */
export function quantile(sorted: readonly number[], q: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length)));
  return sorted[rank - 1]!;
}

export interface Summary {
  sent: number;
  answered: number;
  failed: number;
  failedByCause: Record<string, number>;
  lostPercent: number;
  /** Latency of answered requests, seconds. */
  p50S: number | null;
  p95S: number | null;
  maxS: number | null;
  /** Seconds from the spike's start to the first sample with more ready replicas than at the spike's start; null if none. */
  spikeToNewReadyS: number | null;
  maxReady: number;
  maxBacklog: number | null;
}

export function summarize(requests: readonly RequestRecord[], samples: readonly Sample[], spikeStartS: number): Summary {
  const answered = requests.filter((r) => r.outcome === 'answered');
  const failedByCause: Record<string, number> = {};
  for (const r of requests) if (r.outcome !== 'answered') failedByCause[r.outcome] = (failedByCause[r.outcome] ?? 0) + 1;
  const latencies = answered.map((r) => r.latencyS).sort((a, b) => a - b);
  const failed = requests.length - answered.length;
  const atSpike = [...samples].reverse().find((s) => s.t <= spikeStartS)?.ready ?? samples[0]?.ready ?? 0;
  const firstNew = samples.find((s) => s.t >= spikeStartS && s.ready > atSpike);
  const backlogs = samples.map((s) => s.backlog).filter((b): b is number => b !== null);
  return {
    sent: requests.length,
    answered: answered.length,
    failed,
    failedByCause,
    lostPercent: requests.length ? (100 * failed) / requests.length : 0,
    p50S: quantile(latencies, 0.5),
    p95S: quantile(latencies, 0.95),
    maxS: latencies.length ? latencies[latencies.length - 1]! : null,
    spikeToNewReadyS: firstNew ? firstNew.t - spikeStartS : null,
    maxReady: Math.max(0, ...samples.map((s) => s.ready)),
    maxBacklog: backlogs.length ? Math.max(...backlogs) : null,
  };
}
