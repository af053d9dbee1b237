import { describe, expect, it } from 'vitest';
import { defaultWebhookSettings, injectionConfig } from '../../webhook/config.js';
import { decidePod, heapCeilingMiB, heapFlags, quantityBytes } from '../../webhook/admission/pod-injection.js';

describe("the injected sidecar's heap ceiling", () => {
  it('reads Kubernetes memory quantities', () => {
    expect(quantityBytes('256Mi')).toBe(256 * 2 ** 20);
    expect(quantityBytes('1Gi')).toBe(2 ** 30);
    expect(quantityBytes('0.5Gi')).toBe(2 ** 29);
    expect(quantityBytes('500M')).toBe(500e6);
    expect(quantityBytes('268435456')).toBe(268435456);
    expect(quantityBytes('1e9')).toBe(1e9);
    expect(() => quantityBytes('lots')).toThrow('not a memory quantity: "lots"');
  });

  it('is a quarter of the memory limit, at least 16 MiB', () => {
    expect(heapCeilingMiB('256Mi')).toBe(64);
    expect(heapCeilingMiB('512Mi')).toBe(128);
    expect(heapCeilingMiB('1G')).toBe(238);
    expect(heapCeilingMiB('32Mi')).toBe(16);
  });

  it('bounds the young generation too: semi-spaces of a sixteenth of the limit, so the whole heap stays under 7/16 of it', () => {
    expect(heapFlags('256Mi')).toBe('--max-old-space-size=64 --max-semi-space-size=16');
    expect(heapFlags('1Gi')).toBe('--max-old-space-size=256 --max-semi-space-size=64');
  });

  it('follows a pod that raises its limit with kueuer.io/sidecar-memory-limit, as NODE_OPTIONS', () => {
    const config = injectionConfig(defaultWebhookSettings(), true, 'test');
    const pod = (annotations: Record<string, string>) => ({
      metadata: { name: 'p', labels: { 'kueuer.io/inject': 'true' }, annotations },
      spec: { containers: [{ name: 'app', image: 'x', ports: [{ containerPort: 8080 }] }] },
    });
    const nodeOptions = (annotations: Record<string, string>) => {
      const d = decidePod(pod(annotations), 'shop', config);
      if (d.kind !== 'patch') throw new Error(d.kind);
      const added = d.patch.find((op) => op.path === '/spec/initContainers') as { value: Array<{ env: Array<{ name: string; value: string }> }> };
      return added.value[0]!.env.find((e) => e.name === 'NODE_OPTIONS')?.value;
    };
    expect(nodeOptions({})).toBe('--max-old-space-size=64 --max-semi-space-size=16');
    expect(nodeOptions({ 'kueuer.io/sidecar-memory-limit': '1Gi' })).toBe('--max-old-space-size=256 --max-semi-space-size=64');
  });
});
