import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadYaml, type V1MutatingWebhookConfiguration } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { LABELS, NAMESPACE_LABEL, NAMESPACE_LABEL_VALUE } from '../../shared/annotations.js';

const config = loadYaml<V1MutatingWebhookConfiguration>(
  readFileSync(join(import.meta.dirname, '..', '..', 'manifests', 'base', 'webhook', 'mutating-webhook-configuration.yaml'), 'utf8'),
);

describe('MutatingWebhookConfiguration', () => {
  it('sends pods (create) and Services (create, update) to /mutate with v1 reviews', () => {
    const byResource = Object.fromEntries(config.webhooks!.map((w) => [w.rules![0]!.resources![0], w]));
    expect(byResource.pods!.rules![0]!.operations).toEqual(['CREATE']);
    expect(byResource.services!.rules![0]!.operations).toEqual(['CREATE', 'UPDATE']);
    for (const w of config.webhooks!) {
      expect(w.clientConfig.service?.path).toBe('/mutate');
      expect(w.admissionReviewVersions).toEqual(['v1']);
      expect(w.sideEffects).toBe('None');
      expect(w.reinvocationPolicy).toBe('IfNeeded');
      expect(w.timeoutSeconds).toBeLessThanOrEqual(10);
    }
  });

  it('selects opted-in namespaces only, never kube-system or kueuer-system', () => {
    for (const w of config.webhooks!) {
      const exprs = w.namespaceSelector!.matchExpressions!;
      expect(exprs).toContainEqual({ key: NAMESPACE_LABEL, operator: 'In', values: [NAMESPACE_LABEL_VALUE] });
      expect(exprs).toContainEqual({ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', 'kueuer-system'] });
    }
  });

  it('selects only objects labelled kueuer.io/inject (objectSelector), so an outage blocks only opted-in objects', () => {
    for (const w of config.webhooks!) {
      expect(w.failurePolicy).toBe('Fail');
      expect(w.objectSelector).toEqual({ matchExpressions: [{ key: LABELS.inject, operator: 'Exists' }] });
    }
  });
});
