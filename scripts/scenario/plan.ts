/**
 * The load of the origin experiment (HEIA-FR, 2021) as an open-loop plan:
 * the report's k6 stages, time-compressed by a factor, each stage's "users"
 * turned into an arrival rate. Pure functions; scripts/scenario/vegeta.ts runs
 * the plan.
 *
 * Users → rate. A k6 user is a closed loop: it sends, waits for the answer,
 * sends again. With one request at a time per pod, closed-loop users can
 * never get more answers per second than the pods serve: at the report's
 * spike (100 users, at most 30 replicas, 15 s mean work) that is
 * 30 / 15 s = 2 requests/s. So the spike's 100 users are the arrival rate
 * that `maxReplicas` pods serve at the app's mean work time (times `spikeLoad`,
 * 1 in the full runs), and every other stage is in proportion to its users.
 * An open loop keeps that rate whatever the system does; a slow system cannot
 * slow it down.
 */

export interface Stage {
  name: string;
  users: number;
  /** Duration in the report, seconds. */
  seconds: number;
}

/** The report's stages: 10 users 1 min, a spike to 100 held 3 min, 20 for 3 min, 10 for 7 min, 40 s stress at 50. */
export const REPORT_STAGES: readonly Stage[] = [
  { name: 'warm-up', users: 10, seconds: 60 },
  { name: 'spike', users: 100, seconds: 180 },
  { name: 'after-spike', users: 20, seconds: 180 },
  { name: 'calm', users: 10, seconds: 420 },
  { name: 'stress', users: 50, seconds: 40 },
];

export interface AppProfile {
  /** The script in test/scenario-apps/ (without .mjs) and the Deployment's name. */
  name: string;
  /** Mean work time of one request, seconds. */
  meanWorkSeconds: number;
  describe: string;
}

export const APPS: Record<string, AppProfile> = {
  'random-delay': { name: 'random-delay', meanWorkSeconds: 15, describe: 'the report’s fake service: a random 0–30 s of work per request' },
  worker: { name: 'worker', meanWorkSeconds: 5, describe: 'the RabbitMQ origin project’s worker: 5 s of work per request' },
};

export interface PlanOptions {
  /** Time compression: each stage lasts seconds / factor. */
  factor: number;
  maxReplicas: number;
  /** The spike's rate as a fraction of what maxReplicas pods serve (1 in the full runs). */
  spikeLoad: number;
}

export interface PlannedStage extends Stage {
  /** Offset from the start of the load, seconds. */
  startS: number;
  durationS: number;
  /** Requests per second. */
  rate: number;
}

/** Requests per second one user stands for: the 100-user spike is what maxReplicas pods serve, times spikeLoad. */
export function ratePerUser(app: AppProfile, options: Pick<PlanOptions, 'maxReplicas' | 'spikeLoad'>, stages: readonly Stage[] = REPORT_STAGES): number {
  const spikeUsers = Math.max(...stages.map((s) => s.users));
  return ((options.maxReplicas / app.meanWorkSeconds) * options.spikeLoad) / spikeUsers;
}

export function planLoad(app: AppProfile, options: PlanOptions, stages: readonly Stage[] = REPORT_STAGES): PlannedStage[] {
  if (!(options.factor >= 1)) throw new Error(`the time compression factor must be at least 1, got ${options.factor}`);
  if (!(options.spikeLoad > 0)) throw new Error(`spikeLoad must be positive, got ${options.spikeLoad}`);
  const perUser = ratePerUser(app, options, stages);
  let startS = 0;
  return stages.map((s) => {
    const durationS = s.seconds / options.factor;
    const planned = { ...s, startS, durationS, rate: s.users * perUser };
    startS += durationS;
    return planned;
  });
}

/** vegeta's -rate for `rate` requests/s: an integer count per 100 s (vegeta paces them evenly), at least 1. */
export function vegetaRate(rate: number): string {
  return `${Math.max(1, Math.round(rate * 100))}/100s`;
}

/** How many requests vegeta sends for a stage: one at its start, then one every 100 s / count, while the stage lasts. */
export function expectedRequests(stage: Pick<PlannedStage, 'rate' | 'durationS'>): number {
  const count = Math.max(1, Math.round(stage.rate * 100));
  return Math.ceil((stage.durationS * count) / 100 - 1e-9);
}

/** Total load time, seconds. */
export const loadSeconds = (plan: readonly PlannedStage[]): number => plan.reduce((s, p) => s + p.durationS, 0);
