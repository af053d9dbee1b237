/**
 * The scenario's picture, drawn by gnuplot (pngcairo): one column per run,
 * (a) without Kueuer beside (b) Kueuer on RabbitMQ and (c) on Kafka. Top row:
 * each request's latency at its start time, coloured by outcome. Bottom row:
 * ready and desired replicas, and Kueuer's backlog (or, without Kueuer, the
 * app pods' CPU, which its HPA scales on). Stage boundaries are drawn in both.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { PlannedStage } from './plan.js';
import type { RequestRecord, Sample } from './results.js';

export interface RunForPlot {
  id: string;
  title: string;
  requests: readonly RequestRecord[];
  samples: readonly Sample[];
  kueuer: boolean;
}

/** The colour group of an outcome: 0 answered, 1 client timeout, 2 HTTP error, 3 connection error. */
export function outcomeGroup(r: Pick<RequestRecord, 'outcome'>): number {
  if (r.outcome === 'answered') return 0;
  if (r.outcome === 'client-timeout') return 1;
  if (r.outcome.startsWith('http-')) return 2;
  return 3;
}

const dash = (v: number | null) => (v === null ? 'NaN' : String(v));

export function requestsTsv(requests: readonly RequestRecord[]): string {
  return [
    '# start_s\tlatency_s\tgroup\toutcome',
    ...requests.map((r) => `${r.startS.toFixed(3)}\t${r.latencyS.toFixed(3)}\t${outcomeGroup(r)}\t${r.outcome}`),
  ].join('\n');
}

export function samplesTsv(samples: readonly Sample[]): string {
  return [
    '# t_s\tready\treplicas\thpa_desired\tbacklog\tapp_cpu_millis\thost_cpu_percent',
    ...samples.map((s) => [s.t, s.ready, s.replicas, dash(s.desired), dash(s.backlog), dash(s.cpuMillis), dash(s.hostCpuPercent)].join('\t')),
  ].join('\n');
}

/** The gnuplot script for the runs' data files (in gnuplot's working directory), writing `png` (relative to it). */
export function gnuplotScript(runs: readonly RunForPlot[], plan: readonly PlannedStage[], png: string, title: string): string {
  const xmax = Math.ceil(Math.max(60, ...runs.flatMap((r) => [...r.samples.map((s) => s.t), ...r.requests.map((q) => q.startS + q.latencyS)])) / 10) * 10;
  const lmax = Math.ceil(Math.max(75, ...runs.flatMap((r) => r.requests.map((q) => q.latencyS))) / 10) * 10;
  const rmax = Math.max(5, ...runs.flatMap((r) => r.samples.flatMap((s) => [s.ready, s.desired ?? 0, s.replicas]))) + 2;
  const stageLines = plan
    .slice(1)
    .map((s) => `set arrow from ${s.startS.toFixed(1)}, graph 0 to ${s.startS.toFixed(1)}, graph 1 nohead dt 3 lc rgb '#999999'`)
    .join('\n');
  const lines: string[] = [
    `set terminal pngcairo size ${600 * runs.length},900 font 'DejaVu Sans,10'`,
    `set output '${png}'`,
    `set multiplot layout 2,${runs.length} title '${title.replaceAll("'", '')}' font ',${runs.length > 1 ? 12 : 8}'`,
    'set grid',
    `set xrange [0:${xmax}]`,
    "set datafile separator '\\t'",
    "set datafile missing 'NaN'",
    "set key top center horizontal samplen 1 font ',8'",
  ];
  for (const run of runs) {
    const f = `${run.id}-requests.tsv`;
    lines.push(
      'unset y2tics; unset y2label; set ytics nomirror',
      `set title '${run.title.replaceAll("'", '')}: latency by request start'`,
      "set xlabel 'seconds since the load started'",
      "set ylabel 'latency (s)'",
      `set yrange [0:${lmax}]`,
      'unset arrow',
      stageLines,
      `plot '${f}' using 1:($3==0?$2:1/0) with points pt 7 ps 0.4 lc rgb '#2e7d32' title 'answered', \\`,
      `     '' using 1:($3==1?$2:1/0) with points pt 7 ps 0.5 lc rgb '#c62828' title 'client timeout (60 s)', \\`,
      `     '' using 1:($3==2?$2:1/0) with points pt 7 ps 0.5 lc rgb '#ef6c00' title 'HTTP error', \\`,
      `     '' using 1:($3==3?$2:1/0) with points pt 7 ps 0.5 lc rgb '#6a1b9a' title 'connection refused/reset'`,
    );
  }
  for (const run of runs) {
    const f = `${run.id}-samples.tsv`;
    const y2 = run.kueuer ? { col: 5, label: 'backlog (requests)', title: 'Kueuer backlog' } : { col: 6, label: 'app CPU (millicores)', title: 'app CPU' };
    lines.push(
      `set title '${run.title.replaceAll("'", '')}: replicas and ${y2.title}'`,
      "set xlabel 'seconds since the load started'",
      "set ylabel 'replicas'",
      `set yrange [0:${rmax}]`,
      'set y2tics; set ytics nomirror',
      `set y2label '${y2.label}'`,
      'set y2range [0:*]',
      'unset arrow',
      stageLines,
      `plot '${f}' using 1:${y2.col} axes x1y2 with filledcurves x1 fs transparent solid 0.25 noborder lc rgb '#1565c0' title '${y2.title}', \\`,
      `     '' using 1:2 with lines lw 2 lc rgb '#2e7d32' title 'ready', \\`,
      `     '' using 1:4 with lines lw 1 dt 2 lc rgb '#000000' title 'HPA desired'`,
    );
  }
  lines.push('unset multiplot', '');
  return lines.join('\n');
}

/** Writes each run's data files into dataDir and draws the picture with gnuplot. */
export function drawScenario(gnuplot: string, runs: readonly RunForPlot[], plan: readonly PlannedStage[], dataDir: string, png: string, title: string): void {
  for (const run of runs) {
    writeFileSync(join(dataDir, `${run.id}-requests.tsv`), requestsTsv(run.requests) + '\n');
    writeFileSync(join(dataDir, `${run.id}-samples.tsv`), samplesTsv(run.samples) + '\n');
  }
  const script = join(dataDir, 'plot.gp');
  writeFileSync(script, gnuplotScript(runs, plan, relative(dataDir, png), title));
  execFileSync(gnuplot, ['plot.gp'], { cwd: dataDir, stdio: ['ignore', 'inherit', 'inherit'] });
}
