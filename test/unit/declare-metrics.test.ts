/** shared/metrics.ts declareMetrics: a table of metric data becomes the registry's instruments, as prom-client would make them by hand. */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { counter, declareMetrics, gauge, histogram, LATENCY_BUCKETS } from '../../shared/metrics.js';
import { responderMetrics } from '../../responder/metrics.js';
import { webhookMetrics } from '../../webhook/metrics.js';

describe('declareMetrics', () => {
  it('registers each entry in table order with its type, name, help and label names, under the table keys', async () => {
    const registry = new Registry();
    const m = declareMetrics(registry, {
      total: counter('t_total', 'counted', ['queue', 'code']),
      level: gauge('t_level', 'held'),
      seconds: histogram('t_seconds', 'timed', ['queue'], [0.5, 2]),
    });
    expect(m.total).toBeInstanceOf(Counter);
    expect(m.level).toBeInstanceOf(Gauge);
    expect(m.seconds).toBeInstanceOf(Histogram);
    const json = await registry.getMetricsAsJSON();
    expect(json.map(({ name, type, help }) => ({ name, type, help }))).toEqual([
      { name: 't_total', type: 'counter', help: 'counted' },
      { name: 't_level', type: 'gauge', help: 'held' },
      { name: 't_seconds', type: 'histogram', help: 'timed' },
    ]);
    m.total.inc({ queue: 'q', code: '200' });
    m.level.set(3);
    m.seconds.observe({ queue: 'q' }, 1);
    const text = await registry.metrics();
    expect(text).toContain('t_total{queue="q",code="200"} 1');
    expect(text).toContain('t_level 3');
    expect(text.match(/t_seconds_bucket\{[^}]*\}/g)).toEqual([
      't_seconds_bucket{le="0.5",queue="q"}',
      't_seconds_bucket{le="2",queue="q"}',
      't_seconds_bucket{le="+Inf",queue="q"}',
    ]);
  });

  it("gives the components' histograms their own bucket boundaries", async () => {
    const registry = new Registry();
    responderMetrics(registry, 'q').answered(200, 0.01);
    webhookMetrics(registry).admitted('Pod', 'injected', 0.0001);
    const text = await registry.metrics();
    const bounds = (name: string) => [...text.matchAll(new RegExp(`^${name}_bucket\\{le="([^"]+)"`, 'gm'))].map((b) => b[1]);
    expect(bounds('kueuer_responder_request_duration_seconds')).toEqual([...LATENCY_BUCKETS.map(String), '+Inf']);
    expect(bounds('kueuer_webhook_admission_duration_seconds')).toEqual([
      '0.0001',
      '0.0002',
      '0.0003',
      '0.0005',
      '0.00075',
      '0.001',
      '0.0015',
      '0.002',
      '0.003',
      '0.005',
      '0.01',
      '0.025',
      '0.05',
      '0.1',
      '+Inf',
    ]);
  });
});
