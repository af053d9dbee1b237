/**
 * Every generated reference doc (and the rules file the install scripts source), as the code renders it: the test compares
 * these with the files, `npm run docs` (scripts/dev/docs-generate.ts) writes them.
 * `read` gives a file's current text (its hand-written parts are kept).
 */
import { Registry } from 'prom-client';
import { COMMANDS } from '../../cli/commands.js';
import { renderCatalogue } from '../../shared/error-catalogue.js';
import { asyncMetrics } from '../../responder/async/metrics.js';
import { callbackMetrics } from '../../responder/callbacks/metrics.js';
import { responderMetrics } from '../../responder/metrics.js';
import { sidecarMetrics } from '../../sidecar/metrics.js';
import { autoscalingMetrics } from '../../webhook/autoscaling/metrics.js';
import { leaderGauge, webhookMetrics } from '../../webhook/metrics.js';
import { annotationBodies } from './docs-annotations.js';
import { renderInstallRules } from './install-rules.js';
import { fillGenerated, metricBodies, renderCliReference, type MetricDoc } from './docs-render.js';

/** The metrics each component registers, read from a fresh registry (help, type and labels as Prometheus sees them). */
export function exportedMetrics(): Record<string, MetricDoc[]> {
  const of = (register: (r: Registry) => void): MetricDoc[] => {
    const registry = new Registry();
    register(registry);
    return registry.getMetricsAsArray().map((m) => {
      const labels = (m as unknown as { labelNames?: string[] }).labelNames ?? [];
      return { name: m.name, type: String(m.type), help: m.help, labels: labels.filter((l) => l !== 'queue'), perQueue: labels.includes('queue') };
    });
  };
  return {
    responder: of((r) => {
      responderMetrics(r, 'q');
      asyncMetrics(r, 'q');
      callbackMetrics(r);
    }),
    sidecar: of((r) => sidecarMetrics(r, 'q')),
    webhook: of((r) => {
      webhookMetrics(r);
      leaderGauge(r);
    }),
    autoscaler: of((r) => autoscalingMetrics(r)),
  };
}

export const GENERATED_DOCS = [
  'docs/errors.md',
  'docs/reference/cli.md',
  'docs/reference/annotations.md',
  'docs/reference/metrics.md',
  'scripts/lib/kueuer-rules.sh',
] as const;

/** Each generated file's expected text. */
export function renderReferenceDocs(read: (path: string) => string): Record<(typeof GENERATED_DOCS)[number], string> {
  return {
    'docs/errors.md': renderCatalogue(),
    'docs/reference/cli.md': renderCliReference(read('docs/reference/cli.md'), COMMANDS),
    'docs/reference/annotations.md': fillGenerated(read('docs/reference/annotations.md'), annotationBodies()),
    'docs/reference/metrics.md': fillGenerated(read('docs/reference/metrics.md'), metricBodies(exportedMetrics())),
    'scripts/lib/kueuer-rules.sh': renderInstallRules(),
  };
}
