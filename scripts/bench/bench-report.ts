/**
 * The tables and the target lines `npm run bench` prints and writes to
 * docs/benchmarks.md, from the measurements of one run. Pure: rows in, text out.
 */
import type { Generator, Measurement } from './bench-load.js';

export interface Row extends Measurement {
  app: string;
  path: string;
}

/** The outcome of the "10,000 clients held at once" measurement. */
export interface HeldClients {
  count: number;
  /** How many the responder held at once (the others were refused before the sidecar started). */
  held: number;
  rssIdleMb: number;
  rssHeldMb: number;
  rssPeakMb: number;
  /** The responder's JS heap in use and its memory outside the heap (Buffers), while holding them all. */
  heapMb: number;
  externalMb: number;
  answered: number;
  errors: number;
  crossed: number;
  inversions: number;
  seconds: number;
}

export const PATHS = {
  direct: 'direct (baseline)',
  queueProxy: 'Knative queue-proxy v0.50.0',
  local: 'kueuer local (memory)',
  amqp: 'responder+sidecar (amqp)',
  kafka: 'responder+sidecar (kafka)',
} as const;

/** The replication rows (issue 21): the responder and sidecar on three nodes, one type of queue or topic each. */
export const REPLICATED_PATHS = {
  quorum: 'responder+sidecar (amqp, 3 nodes, quorum queue)',
  classic: 'responder+sidecar (amqp, 3 nodes, classic queue)',
  rf3: 'responder+sidecar (kafka, 3 brokers, RF 3, min ISR 2)',
  rf1: 'responder+sidecar (kafka, 3 brokers, RF 1)',
} as const;

const fmt = (n: number, digits = 0): string => (Number.isFinite(n) ? n.toFixed(digits) : '–');
const pct = (n: number): string => (Number.isFinite(n) ? `${(n * 100).toFixed(1)}%` : '–');

function find(rows: Row[], app: string, path: string, generator: Generator, c: number): Row | undefined {
  return rows.find((r) => r.app === app && r.path === path && r.generator === generator && r.concurrency === c);
}

export function table(rows: Row[]): string[] {
  const out = [
    '| app | path | load | c | req/s | p50 ms | p99 ms | vs direct | vs queue-proxy | added p50 | CPU µs/req (proxy) | broker µs/req | app µs/req | errors |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    const direct = find(rows, r.app, PATHS.direct, r.generator, r.concurrency);
    const qp = find(rows, r.app, PATHS.queueProxy, r.generator, r.concurrency);
    const vsDirect = direct ? r.rps / direct.rps : NaN;
    const vsQp = qp && r.path !== PATHS.direct ? r.rps / qp.rps : NaN;
    const added = direct && r !== direct ? `+${fmt(r.p50 - direct.p50, 2)} ms` : '–';
    out.push(
      `| ${r.app} | ${r.path} | ${r.generator} | ${r.concurrency} | ${fmt(r.rps)} | ${fmt(r.p50, 2)} | ${fmt(r.p99, 2)} | ${pct(vsDirect)} | ${
        r.path === PATHS.direct ? '–' : `${fmt(vsQp, 2)}×`
      } | ${added} | ${r.path === PATHS.direct ? '–' : fmt(r.cpuUs.proxy)} | ${r.cpuUs.broker > 0 ? fmt(r.cpuUs.broker) : '–'} | ${fmt(r.cpuUs.app)} | ${r.errors} |`,
    );
  }
  return out;
}

/** "met" or "missed by …" for a value against a bound. */
function verdict(value: number, bound: number, atLeast: boolean, unit: (n: number) => string): string {
  if (!Number.isFinite(value)) return 'not measured';
  const met = atLeast ? value >= bound : value <= bound;
  return met ? `**met** (${unit(value)})` : `**missed** by ${unit(Math.abs(value - bound))} (${unit(value)})`;
}

const ratio = (n: number): string => `${n.toFixed(2)}×`;
const ms = (n: number): string => `${n.toFixed(2)} ms`;
const share = (n: number): string => `${(n * 100).toFixed(1)}%`;

/** The issue's targets, judged on the wrk rows (undici when wrk was not run). */
export function targets(rows: Row[], fast: string, slow: string): string[] {
  const gen: Generator = rows.some((r) => r.generator === 'wrk') ? 'wrk' : 'undici';
  const get = (app: string, path: string, c: number): Row | undefined => find(rows, app, path, gen, c);
  const rps = (app: string, path: string, c: number): number => get(app, path, c)?.rps ?? NaN;
  const p50 = (path: string): number => get(fast, path, 1)?.p50 ?? NaN;
  const added = (path: string): number => p50(path) - p50(PATHS.direct);
  const toDirect = (app: string, path: string): number => rps(app, path, 64) / rps(app, PATHS.direct, 64);
  const p99 = (path: string): number => get(fast, path, 64)?.p99 ?? NaN;
  return [
    `Targets (issue 15), judged on the ${gen} rows of this run:`,
    '',
    `- kueuer local vs queue-proxy, 0 ms app, c=64 throughput ≥ 1.0×: ${verdict(rps(fast, PATHS.local, 64) / rps(fast, PATHS.queueProxy, 64), 1, true, ratio)}.`,
    `- kueuer local added p50 at c=1 ≤ queue-proxy's (+${fmt(added(PATHS.queueProxy) * 1000)} µs): ${verdict(added(PATHS.local), added(PATHS.queueProxy), false, ms)}.`,
    `- kueuer local p99 at c=64 ≤ queue-proxy's (${fmt(p99(PATHS.queueProxy), 2)} ms): ${verdict(p99(PATHS.local), p99(PATHS.queueProxy), false, ms)}.`,
    `- RabbitMQ ≥ 25% of direct at c=64, 0 ms app: ${verdict(toDirect(fast, PATHS.amqp), 0.25, true, share)}; ≥ 75% with the 10 ms app: ${verdict(toDirect(slow, PATHS.amqp), 0.75, true, share)}.`,
    `- Kafka ≥ 20% of direct at c=64, 0 ms app: ${verdict(toDirect(fast, PATHS.kafka), 0.2, true, share)}; ≥ 60% with the 10 ms app: ${verdict(toDirect(slow, PATHS.kafka), 0.6, true, share)}.`,
    `- Added p50 at c=1: RabbitMQ ≤ 0.75 ms: ${verdict(added(PATHS.amqp), 0.75, false, ms)}; Kafka ≤ 1.5 ms: ${verdict(added(PATHS.kafka), 1.5, false, ms)}.`,
  ];
}

/** What replication costs, from the same run: quorum against classic, RF 3 against RF 1 (wrk rows, else undici). */
export function replicationLines(rows: Row[], fast: string, slow: string): string[] {
  const gen: Generator = rows.some((r) => r.generator === 'wrk') ? 'wrk' : 'undici';
  const compare = (what: string, replicated: string, single: string): string[] =>
    [
      [fast, 1],
      [fast, 64],
      [slow, 64],
    ].flatMap(([app, c]) => {
      const r = find(rows, app as string, replicated, gen, c as number);
      const s = find(rows, app as string, single, gen, c as number);
      if (!r || !s) return [];
      const brokerRatio = s.cpuUs.broker > 0 ? `${fmt(r.cpuUs.broker / s.cpuUs.broker, 2)}×` : '–';
      return [
        `- ${what}, ${app as string}, c=${c as number}: ${fmt(r.rps)} against ${fmt(s.rps)} req/s (${fmt(r.rps / s.rps, 2)}×), p50 ${fmt(r.p50, 2)} against ${fmt(s.p50, 2)} ms; ` +
          `CPU per request: Kueuer ${fmt(r.cpuUs.proxy)} against ${fmt(s.cpuUs.proxy)} µs, the brokers ${fmt(r.cpuUs.broker)} against ${fmt(s.cpuUs.broker)} µs (${brokerRatio}).`,
      ];
    });
  const lines = [
    ...compare('quorum vs classic queue', REPLICATED_PATHS.quorum, REPLICATED_PATHS.classic),
    ...compare('RF 3 vs RF 1 topics', REPLICATED_PATHS.rf3, REPLICATED_PATHS.rf1),
  ];
  return lines.length > 0 ? [`What replication costs, judged on the ${gen} rows of this run:`, '', ...lines] : [];
}

export function heldClientsLines(h: HeldClients | undefined, heldFailure?: string): string[] {
  if (!h) return [`- 10,000 clients held at once: not measured in this run${heldFailure ? ` (${heldFailure})` : ''}.`];
  const clean = h.errors === 0 && h.crossed === 0 && h.answered === h.count;
  return [
    `- ${h.count.toLocaleString('en')} clients sent at once to one responder, ${h.held.toLocaleString('en')} held at once (RabbitMQ; the sidecar started only once every client was held or answered): RSS ${fmt(h.rssIdleMb)} MB idle, ${fmt(h.rssHeldMb)} MB holding them all (JS heap ${fmt(h.heapMb)} MB in use, ${fmt(h.externalMb)} MB outside it), peak ${fmt(h.rssPeakMb)} MB: RSS ≤ 300 MB ${verdict(h.rssPeakMb, 300, false, (n) => `${n.toFixed(0)} MB`)}. ` +
      `${h.answered} answered 200 with their own request's echo, ${h.errors} errors, ${h.crossed} with another client's reply (${clean ? '**met**' : '**missed**'}); all answered in ${h.seconds.toFixed(1)} s, each as its reply arrived (${h.inversions} neighbours out of publish order, from the sidecar's 64 concurrent calls).`,
  ];
}
