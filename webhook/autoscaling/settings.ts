/**
 * Autoscaling settings of a workload, from its annotations (the workload's
 * own metadata, over its pod template's: changing them on the workload does
 * not roll its pods). Pure; every problem names the annotation.
 */
import { ANNOTATIONS, parseBoolean, type Annotations, type Parsed } from '../../shared/annotations.js';
import { durationIn, integerIn } from '../../shared/options.js';

export interface AutoscalingSettings {
  /** `kueuer.io/autoscale: "false"` opts a workload out of the generated autoscaler. */
  enabled: boolean;
  /** 0 enables scale to zero (Kueuer does 0↔1, the HPA 1↔N). */
  minReplicas: number;
  maxReplicas: number;
  /** Queued requests per replica the HPA aims for (AverageValue target). */
  targetBacklog: number;
  scaleDownStabilizationSeconds: number;
  /** With min 0: how long the backlog must stay at 0 before scaling to 0. */
  idleCooldownSeconds: number;
}

export const AUTOSCALING_DEFAULTS: AutoscalingSettings = {
  enabled: true,
  minReplicas: 1,
  maxReplicas: 10,
  targetBacklog: 5,
  scaleDownStabilizationSeconds: 300,
  idleCooldownSeconds: 300,
};

export function parseAutoscalingSettings(workload: Annotations, template: Annotations): Parsed<AutoscalingSettings> {
  const a = { ...(template ?? {}), ...(workload ?? {}) };
  const problems: string[] = [];
  const s: AutoscalingSettings = { ...AUTOSCALING_DEFAULTS };
  const enabled = parseBoolean(a, ANNOTATIONS.autoscale, problems);
  if (enabled !== undefined) s.enabled = enabled;
  const integer = (key: string, min: number, max: number, set: (n: number) => void) => {
    const raw = a[key];
    if (raw === undefined) return;
    try {
      set(integerIn(min, max)(raw));
    } catch (err) {
      problems.push(`${key}: ${(err as Error).message}`);
    }
  };
  const seconds = (key: string, maxS: number, set: (n: number) => void) => {
    const raw = a[key];
    if (raw === undefined) return;
    try {
      set(Math.round(durationIn(0, maxS * 1000)(raw) / 1000));
    } catch (err) {
      problems.push(`${key}: ${(err as Error).message}`);
    }
  };
  integer(ANNOTATIONS.minReplicas, 0, 10_000, (n) => (s.minReplicas = n));
  integer(ANNOTATIONS.maxReplicas, 1, 10_000, (n) => (s.maxReplicas = n));
  integer(ANNOTATIONS.targetBacklog, 1, 1_000_000, (n) => (s.targetBacklog = n));
  // The HPA accepts stabilization windows up to one hour.
  seconds(ANNOTATIONS.scaleDownStabilization, 3600, (n) => (s.scaleDownStabilizationSeconds = n));
  seconds(ANNOTATIONS.idleCooldown, 24 * 3600, (n) => (s.idleCooldownSeconds = n));
  if (problems.length === 0 && s.minReplicas > s.maxReplicas) {
    problems.push(`${ANNOTATIONS.minReplicas} (${s.minReplicas}) is above ${ANNOTATIONS.maxReplicas} (${s.maxReplicas})`);
  }
  return problems.length ? { ok: false, problems } : { ok: true, value: s };
}
