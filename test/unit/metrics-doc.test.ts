/** docs/metrics.md lists every metric Kueuer exports, with its type and labels, and nothing else. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { asyncMetrics } from '../../responder/async/metrics.js';
import { responderMetrics } from '../../responder/metrics.js';
import { sidecarMetrics } from '../../sidecar/metrics.js';
import { autoscalingMetrics } from '../../webhook/autoscaling/metrics.js';
import { webhookMetrics } from '../../webhook/metrics.js';

const root = join(import.meta.dirname, '..', '..');
const doc = readFileSync(join(root, 'docs', 'metrics.md'), 'utf8');
/** `| `name{label,label}` | type | meaning |` rows. */
const rows = new Map(
  [...doc.matchAll(/^\| `(kueuer_\w+)(?:\{([\w,]+)\})?` \| (\w+) \| (.+) \|$/gm)].map((m) => [
    m[1]!,
    { labels: (m[2] ?? '').split(',').filter(Boolean).sort(), type: m[3]!, meaning: m[4]! },
  ]),
);

function exported(): Map<string, { type: string; labels: string[] }> {
  const registry = new Registry();
  responderMetrics(registry, 'q');
  asyncMetrics(registry, 'q');
  sidecarMetrics(registry, 'q');
  webhookMetrics(registry);
  autoscalingMetrics(registry);
  return new Map(
    registry.getMetricsAsArray().map((m) => {
      const labels = ((m as unknown as { labelNames?: string[] }).labelNames ?? []).filter((l) => l !== 'queue').sort();
      return [m.name, { type: m.type as unknown as string, labels }];
    }),
  );
}

describe('docs/metrics.md', () => {
  const metrics = exported();
  // Registered in webhook/start.ts, beside the leader election.
  const leader = /name: '(kueuer_webhook_leader)'/.exec(readFileSync(join(root, 'webhook', 'start.ts'), 'utf8'))![1]!;

  it('documents every exported metric with its type and its labels other than queue', () => {
    expect(metrics.size).toBeGreaterThan(20);
    for (const [name, { type, labels }] of metrics) {
      expect(rows.get(name), `${name} is not in docs/metrics.md`).toBeDefined();
      expect(rows.get(name)!.type, name).toBe(type);
      expect(rows.get(name)!.labels, name).toEqual(labels);
    }
    expect(rows.get(leader)?.type).toBe('gauge');
  });

  it('documents no metric that is not exported', () => {
    for (const name of rows.keys()) expect(metrics.has(name) || name === leader, name).toBe(true);
  });

  it("names the per-queue gauges the webhook's leader alone exports", () => {
    const perQueueGauges = [...metrics].filter(([n, m]) => m.type === 'gauge' && /^kueuer_(queue|workload)_/.test(n)).map(([n]) => n);
    expect(perQueueGauges.length).toBeGreaterThanOrEqual(3);
    for (const name of perQueueGauges) expect(rows.get(leader)!.meaning).toContain(`\`${name}\``);
  });
});
