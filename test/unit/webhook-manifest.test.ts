import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadYaml, type V1MutatingWebhookConfiguration } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { LABELS, NAMESPACE_LABEL, NAMESPACE_LABEL_VALUE } from '../../shared/annotations.js';

const root = join(import.meta.dirname, '..', '..');
const config = loadYaml<V1MutatingWebhookConfiguration>(
  readFileSync(join(root, 'manifests', 'base', 'webhook', 'mutating-webhook-configuration.yaml'), 'utf8'),
);

/** The MutatingWebhookConfiguration of a shipped file; Helm templates are read with their `{{ … }}` lines dropped. */
function shippedConfig(path: string): V1MutatingWebhookConfiguration {
  const text = readFileSync(join(root, path), 'utf8')
    .split('\n')
    .filter((l) => !l.includes('{{'))
    .join('\n');
  const found = parseAllDocuments(text)
    .map((d) => d.toJS() as (V1MutatingWebhookConfiguration & { kind?: string }) | null)
    .find((d) => d?.kind === 'MutatingWebhookConfiguration');
  expect(found, `${path}: the MutatingWebhookConfiguration`).toBeDefined();
  return found!;
}

describe('MutatingWebhookConfiguration', () => {
  it('sends pods (create) and Services (create, update) to /mutate with v1 reviews', () => {
    const byResource = Object.fromEntries(config.webhooks!.map((w) => [w.rules![0]!.resources![0], w]));
    expect(byResource.pods!.rules![0]!.operations).toEqual(['CREATE']);
    expect(byResource.services!.rules![0]!.operations).toEqual(['CREATE', 'UPDATE']);
    for (const w of config.webhooks!) {
      expect(w.clientConfig.service?.path).toBe('/mutate');
      expect(w.admissionReviewVersions).toEqual(['v1']);
      expect(w.reinvocationPolicy).toBe('IfNeeded');
      expect(w.timeoutSeconds).toBeLessThanOrEqual(10);
    }
  });

  // An admission reserves a responder port (ConfigMap kueuer-responder-ports) and may write an Event;
  // a dry-run admission does neither, which is what NoneOnDryRun declares (issue 22, point 14).
  for (const path of [
    'manifests/base/webhook/mutating-webhook-configuration.yaml',
    'charts/kueuer/templates/mutating-webhook-configuration.yaml',
    'manifests/install.yaml',
    'manifests/install-cert-manager.yaml',
  ]) {
    it(`${path}: declares sideEffects NoneOnDryRun (admissions have side effects, dry-run ones none)`, () => {
      const webhooks = shippedConfig(path).webhooks!;
      expect(webhooks.map((w) => w.name)).toEqual(['pods.kueuer.io', 'services.kueuer.io']);
      for (const w of webhooks) expect(w.sideEffects).toBe('NoneOnDryRun');
    });
  }

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
