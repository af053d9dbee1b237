/**
 * kueuer.io/backend naming several Secrets (issue 21): the first is the
 * sidecar's environment as before; the others (a Strimzi KafkaUser Secret,
 * the cluster CA Secret) are mounted as they are and listed in
 * KUEUER_BROKER_SECRET_DIRS, where the sidecar reads them by shape.
 */
import type { V1Container, V1Pod } from '@kubernetes/client-node';
import jsonpatch from 'fast-json-patch';
import { describe, expect, it } from 'vitest';
import { parsePodSettings } from '../../shared/annotations.js';
import { decidePod } from '../../webhook/admission/pod-injection.js';
import { testInjectionConfig } from '../helpers/webhook.js';

function pod(annotations: Record<string, string>): V1Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'api', namespace: 'shop', labels: { 'kueuer.io/inject': 'true' }, annotations },
    spec: { containers: [{ name: 'app', image: 'example.com/api:1', ports: [{ containerPort: 8080 }] }] },
  };
}

function injected(annotations: Record<string, string>): V1Pod {
  const p = pod(annotations);
  const d = decidePod(p, 'shop', testInjectionConfig);
  if (d.kind !== 'patch') throw new Error(`expected a patch, got ${JSON.stringify(d)}`);
  return jsonpatch.applyPatch(structuredClone(p), d.patch).newDocument;
}

const sidecarOf = (p: V1Pod): V1Container => [...(p.spec!.initContainers ?? []), ...p.spec!.containers].find((c) => c.name === 'kueuer-sidecar')!;

describe('several broker Secrets', () => {
  it('mounts the Secrets after the first and names their directories; the first stays envFrom', () => {
    const p = injected({ 'kueuer.io/backend': 'kueuer-backend,kueuer,my-cluster-cluster-ca-cert' });
    const sidecar = sidecarOf(p);
    expect(sidecar.envFrom).toEqual([{ secretRef: { name: 'kueuer-backend' } }]);
    expect(sidecar.volumeMounts).toEqual([
      { name: 'kueuer-broker-1', mountPath: '/etc/kueuer/broker/kueuer', readOnly: true },
      { name: 'kueuer-broker-2', mountPath: '/etc/kueuer/broker/my-cluster-cluster-ca-cert', readOnly: true },
    ]);
    expect(sidecar.env).toContainEqual({ name: 'KUEUER_BROKER_SECRET_DIRS', value: '/etc/kueuer/broker/kueuer,/etc/kueuer/broker/my-cluster-cluster-ca-cert' });
    expect(p.spec!.volumes).toEqual([
      { name: 'kueuer-broker-1', secret: { secretName: 'kueuer' } },
      { name: 'kueuer-broker-2', secret: { secretName: 'my-cluster-cluster-ca-cert' } },
    ]);
    // Admitted again (reinvocation), nothing doubles.
    const again = decidePod(p, 'shop', testInjectionConfig);
    const twice = again.kind === 'patch' ? jsonpatch.applyPatch(structuredClone(p), again.patch).newDocument : p;
    expect(twice.spec!.volumes).toHaveLength(2);
    expect(sidecarOf(twice).volumeMounts).toHaveLength(2);
  });

  it("refuses a pod whose own volume has the name of a broker Secret's mount, naming both", () => {
    const p = pod({ 'kueuer.io/backend': 'kueuer-backend,kueuer' });
    p.spec!.volumes = [{ name: 'kueuer-broker-1', configMap: { name: 'settings' } }];
    expect(decidePod(p, 'shop', testInjectionConfig)).toEqual({
      kind: 'refuse',
      message: expect.stringMatching(/the pod's own volume kueuer-broker-1 has the name Kueuer gives the Secret kueuer .*rename that volume/),
    });
  });

  it('adds nothing for one Secret', () => {
    const p = injected({ 'kueuer.io/backend': 'rabbit' });
    expect(p.spec!.volumes).toBeUndefined();
    expect(sidecarOf(p).volumeMounts).toBeUndefined();
    expect(sidecarOf(p).env!.map((e) => e.name)).not.toContain('KUEUER_BROKER_SECRET_DIRS');
  });

  it.each([
    ['a,,b', /"a,,b" is not accepted/],
    ['a,a', /names the Secret a twice/],
    ['a,b,c,d,e', /at most 4 Secrets/],
    ['a,B', /"a,B" is not accepted/],
    ['a, b', /"a, b" has a space: separate the Secret names by commas only/],
  ])('refuses kueuer.io/backend: %s', (value, message) => {
    const parsed = parsePodSettings({ 'kueuer.io/backend': value });
    expect(parsed.ok).toBe(false);
    expect(parsed.ok ? '' : parsed.problems.join('; ')).toMatch(message);
  });
});
