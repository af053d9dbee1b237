/**
 * What the components' metrics share: the latency buckets, the registry each
 * process exports, the declaration of a component's metrics as data, and the
 * helpers that label and memoize instruments.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

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

interface Instruments<L extends string> {
  counter: Counter<L>;
  gauge: Gauge<L>;
  histogram: Histogram<L>;
}

/** One metric as Prometheus shows it: its type, name, help and label names (a histogram's bucket boundaries too). */
export interface MetricSpec<K extends keyof Instruments<string> = keyof Instruments<string>, L extends string = string> {
  readonly type: K;
  readonly name: string;
  readonly help: string;
  readonly labels: readonly L[];
  readonly buckets?: readonly number[];
}

function metric<K extends keyof Instruments<string>>(type: K) {
  return <const L extends string = never>(name: string, help: string, labels: readonly L[] = []): MetricSpec<K, L> => ({ type, name, help, labels });
}

export const counter = metric('counter');
export const gauge = metric('gauge');
export const histogram = <const L extends string>(
  name: string,
  help: string,
  labels: readonly L[],
  buckets: readonly number[],
): MetricSpec<'histogram', L> => ({
  ...metric('histogram')(name, help, labels),
  buckets,
});

type InstrumentOf<S> = S extends MetricSpec<infer K, infer L> ? Instruments<L>[K] : never;

/**
 * Registers a component's metrics, declared as data (the table's order is the
 * order /metrics and docs/reference/metrics.md list them in), and returns
 * their instruments under the table's keys.
 */
export function declareMetrics<T extends Record<string, MetricSpec>>(registry: Registry, specs: T): { [K in keyof T]: InstrumentOf<T[K]> } {
  const registers = [registry];
  const instruments = Object.entries(specs).map(([key, { type, name, help, labels, buckets }]) => {
    const config = { name, help, labelNames: labels, registers };
    if (type === 'counter') return [key, new Counter(config)];
    if (type === 'gauge') return [key, new Gauge(config)];
    return [key, new Histogram({ ...config, ...(buckets && { buckets: [...buckets] }) })];
  });
  return Object.fromEntries(instruments) as { [K in keyof T]: InstrumentOf<T[K]> };
}
