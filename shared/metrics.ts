/**
 * What the components' metrics share: the latency buckets, the registry each
 * process exports, and the helpers that label and memoize instruments.
 */
import { collectDefaultMetrics, Registry } from 'prom-client';

export { perRegistry } from './per-registry.js';
export { statusLabel } from './status-label.js';

/** Seconds, from a millisecond answer to a five-minute one: end-to-end, queue wait and app time alike. */
export const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

/** A process's registry: its components' metrics plus Node's default ones. */
export function newRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return registry;
}
