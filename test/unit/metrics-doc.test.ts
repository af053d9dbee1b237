/** docs/reference/metrics.md lists every metric Kueuer exports, with its type and labels, and nothing else. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { exportedMetrics } from '../../scripts/dev/docs-reference.js';

const root = join(import.meta.dirname, '..', '..');
const doc = readFileSync(join(root, 'docs', 'reference', 'metrics.md'), 'utf8');
/** `| `name` | type | labels | meaning |` rows. */
const rows = new Map(
  [...doc.matchAll(/^\| `(kueuer_\w+)` \| (\w+) \| ([^|]+) \| (.+) \|$/gm)].map((m) => [
    m[1]!,
    { type: m[2]!, labels: [...m[3]!.matchAll(/`(\w+)`/g)].map((l) => l[1]!).sort() },
  ]),
);

describe('docs/reference/metrics.md', () => {
  const exported = Object.values(exportedMetrics()).flat();

  it('documents every exported metric with its type and its labels, queue included', () => {
    expect(exported.length).toBeGreaterThan(20);
    for (const m of exported) {
      expect(rows.get(m.name), `${m.name} is not in docs/reference/metrics.md`).toBeDefined();
      expect(rows.get(m.name)!.type, m.name).toBe(m.type);
      expect(rows.get(m.name)!.labels, m.name).toEqual([...(m.perQueue ? ['queue'] : []), ...m.labels].sort());
    }
  });

  it('documents no metric that is not exported', () => {
    for (const name of rows.keys())
      expect(
        exported.some((m) => m.name === name),
        name,
      ).toBe(true);
  });

  it("includes the webhook's leader gauge that webhook/start.ts registers", () => {
    const start = readFileSync(join(root, 'webhook', 'start.ts'), 'utf8');
    expect(start).toContain('leaderGauge(registry)');
    expect(rows.get('kueuer_webhook_leader')?.type).toBe('gauge');
  });

  it("says the webhook's leader alone exports the per-queue gauges, which all sit in the autoscaler's table", () => {
    expect(doc).toContain("alone exports the\nautoscaler's per-queue gauges below");
    const autoscaler = doc.slice(doc.indexOf('## Autoscaler'), doc.indexOf('## Health'));
    const gauges = exported.filter((m) => m.type === 'gauge' && /^kueuer_(queue|workload)_/.test(m.name));
    expect(gauges.length).toBeGreaterThanOrEqual(3);
    for (const g of gauges) expect(autoscaler).toContain(`| \`${g.name}\` |`);
  });
});
