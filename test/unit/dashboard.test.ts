/** Every metric the Grafana dashboard queries is one Kueuer really exports. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { responderMetrics } from '../../responder/metrics.js';
import { sidecarMetrics } from '../../sidecar/metrics.js';
import { autoscalingMetrics } from '../../webhook/autoscaling/metrics.js';
import { webhookMetrics } from '../../webhook/metrics.js';

const dashboard = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'manifests', 'grafana', 'kueuer-dashboard.json'), 'utf8')) as {
  panels: Array<{ title: string; targets: Array<{ expr: string }> }>;
  templating: { list: Array<{ query?: unknown }> };
};

function exported(): Map<string, string> {
  const registry = new Registry();
  responderMetrics(registry, 'q');
  sidecarMetrics(registry, 'q');
  webhookMetrics(registry);
  autoscalingMetrics(registry);
  return new Map(registry.getMetricsAsArray().map((m) => [m.name, m.type as unknown as string]));
}

describe('Grafana dashboard', () => {
  const metrics = exported();
  const queries = [...dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr)), ...dashboard.templating.list.map((v) => String(v.query ?? ''))];

  it('has the panels operators look for', () => {
    const titles = dashboard.panels.map((p) => p.title.toLowerCase());
    for (const wanted of ['backlog', 'wait time', 'end-to-end latency', 'requests by status', 'replicas against desired', 'dead letters']) {
      expect(
        titles.some((t) => t.includes(wanted)),
        wanted,
      ).toBe(true);
    }
  });

  it('queries only metrics Kueuer exports, histograms by their series', () => {
    const used = new Set(queries.flatMap((q) => q.match(/\bkueuer_[a-z_]+/g) ?? []));
    expect(used.size).toBeGreaterThan(8);
    for (const name of used) {
      const base = name.replace(/_(bucket|sum|count)$/, '');
      expect(metrics.has(base), `${name} is not exported`).toBe(true);
      if (base !== name) expect(metrics.get(base), `${name} needs a histogram`).toBe('histogram');
    }
  });
});
