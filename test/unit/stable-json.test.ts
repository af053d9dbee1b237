import { describe, expect, it } from 'vitest';
import { stableJson } from '../../shared/stable-json.js';
import { autoscalerFingerprint } from '../../webhook/autoscaling/autoscaler-store.js';

describe('fingerprints', () => {
  it('stableJson ignores key order, keeps array order', () => {
    expect(stableJson({ b: 1, a: { d: [2, 1], c: null } })).toBe(stableJson({ a: { c: null, d: [2, 1] }, b: 1 }));
    expect(stableJson([1, 2])).not.toBe(stableJson([2, 1]));
  });

  it('an HPA read back with its keys in another order is not drift (no needless replace)', () => {
    const a = {
      kind: 'HorizontalPodAutoscaler',
      metadata: { labels: { 'app.kubernetes.io/managed-by': 'kueuer' } },
      spec: {
        minReplicas: 1,
        maxReplicas: 5,
        scaleTargetRef: { kind: 'Deployment', name: 'w', apiVersion: 'apps/v1' },
        metrics: [{ type: 'External', external: { metric: { name: 'm' }, target: { type: 'AverageValue', averageValue: '5' } } }],
      },
    };
    const b = {
      kind: 'HorizontalPodAutoscaler',
      metadata: { labels: { 'app.kubernetes.io/managed-by': 'kueuer' } },
      spec: {
        scaleTargetRef: { apiVersion: 'apps/v1', name: 'w', kind: 'Deployment' },
        maxReplicas: 5,
        minReplicas: 1,
        metrics: [{ external: { target: { averageValue: '5', type: 'AverageValue' }, metric: { name: 'm' } }, type: 'External' }],
      },
    };
    expect(autoscalerFingerprint(b)).toBe(autoscalerFingerprint(a));
    expect(autoscalerFingerprint({ ...b, spec: { ...b.spec, maxReplicas: 6 } })).not.toBe(autoscalerFingerprint(a));
  });
});
