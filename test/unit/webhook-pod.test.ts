/** The sidecar's admin port against the pod's own ports (issue 12, item 15), decided by the pure decidePod. */
import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import jsonpatch from 'fast-json-patch';
import { decidePod, drainHook, existingDrainToken } from '../../webhook/admission/pod-injection.js';
import { testInjectionConfig } from '../helpers/webhook.js';

function pod(annotations: Record<string, string>, extra: Partial<V1Pod['spec']> = {}): V1Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'api', namespace: 'shop', labels: { 'kueuer.io/inject': 'true' }, annotations },
    spec: { containers: [{ name: 'app', image: 'example.com/api:1', ports: [{ containerPort: 8080, name: 'http' }] }], ...extra },
  };
}

const adminListen = (p: V1Pod) => {
  const d = decidePod(p, 'shop', testInjectionConfig);
  if (d.kind !== 'patch') throw new Error(`expected a patch, got ${JSON.stringify(d)}`);
  const sidecar = d.patch.find((op) => op.op === 'add' && op.path.startsWith('/spec/initContainers')) as { value: unknown } | undefined;
  const value = sidecar!.value as
    | Array<{ env: Array<{ name: string; value: string }>; ports: Array<{ containerPort: number }> }>
    | { env: Array<{ name: string; value: string }>; ports: Array<{ containerPort: number }> };
  const c = Array.isArray(value) ? value[0]! : value;
  return { env: c.env.find((e) => e.name === 'KUEUER_ADMIN_LISTEN')!.value, port: c.ports[0]!.containerPort };
};

describe('sidecar admin port', () => {
  it('refuses a pod whose app container declares the admin port, naming the container, the port and the fix', () => {
    const p = pod({}, { containers: [{ name: 'app', image: 'x', ports: [{ containerPort: 8080 }, { containerPort: 9091 }] }] });
    const d = decidePod(p, 'shop', testInjectionConfig);
    expect(d.kind).toBe('refuse');
    const message = (d as { message: string }).message;
    expect(message).toContain('9091');
    expect(message).toContain('container "app"');
    expect(message).toContain('kueuer.io/admin-port');
    expect(message).toContain('--sidecar-admin-port');
  });

  it('refuses when the app port itself (kueuer.io/app-port, not declared) is the admin port', () => {
    const d = decidePod(pod({ 'kueuer.io/app-port': '9091' }), 'shop', testInjectionConfig);
    expect(d).toEqual({ kind: 'refuse', message: expect.stringContaining('the app port 9091 (kueuer.io/app-port)') });
  });

  it('sees ports of a user native sidecar (init container with restartPolicy Always), not of a plain init container', () => {
    const native = pod({}, { initContainers: [{ name: 'proxy', image: 'x', restartPolicy: 'Always', ports: [{ containerPort: 9091 }] }] });
    expect(decidePod(native, 'shop', testInjectionConfig)).toMatchObject({ kind: 'refuse', message: expect.stringContaining('container "proxy"') });
    const plain = pod({}, { initContainers: [{ name: 'migrate', image: 'x', ports: [{ containerPort: 9091 }] }] });
    expect(decidePod(plain, 'shop', testInjectionConfig).kind).toBe('patch');
  });

  it('moves the admin port with kueuer.io/admin-port', () => {
    const p = pod({ 'kueuer.io/admin-port': '9200' }, { containers: [{ name: 'app', image: 'x', ports: [{ containerPort: 8080 }, { containerPort: 9091 }] }] });
    expect(adminListen(p)).toEqual({ env: '0.0.0.0:9200', port: 9200 });
  });

  it.each([
    ['0', 'kueuer.io/admin-port: "0" is not accepted; use a port number from 1 to 65535'],
    ['metrics', 'kueuer.io/admin-port: "metrics" is not accepted; use a port number from 1 to 65535'],
    ['8080', 'the sidecar\'s admin port 8080 is also port 8080 ("http") of container "app"'],
  ])('refuses kueuer.io/admin-port=%s', (value, message) => {
    expect(decidePod(pod({ 'kueuer.io/admin-port': value }), 'shop', testInjectionConfig)).toEqual({
      kind: 'refuse',
      message: expect.stringContaining(message),
    });
  });
});

describe('the drain token (issue 22, item 5)', () => {
  const admitted = (p: V1Pod, config: typeof testInjectionConfig): V1Pod => {
    const d = decidePod(p, 'shop', config);
    if (d.kind !== 'patch') throw new Error(`expected a patch, got ${JSON.stringify(d)}`);
    return jsonpatch.applyPatch(structuredClone(p), d.patch, true, false).newDocument;
  };

  it('is new for each pod, in the sidecar env and the app preStop hook, and kept when the pod is admitted again', () => {
    let n = 0;
    const config = { ...testInjectionConfig, newDrainToken: () => `token-number-${++n}-0123456789` };
    const first = admitted(pod({}), config);
    const token = existingDrainToken(first);
    expect(token).toBe('token-number-1-0123456789');
    expect(first.spec!.containers[0]!.lifecycle!.preStop).toEqual(drainHook(9091, token!));
    expect(first.spec!.containers[0]!.lifecycle!.preStop!.httpGet!.httpHeaders).toEqual([{ name: 'Authorization', value: `Bearer ${token}` }]);
    // A reinvocation: the same token, no patch.
    const again = decidePod(first, 'shop', config);
    expect(again).toMatchObject({ kind: 'patch', patch: [] });
    expect(existingDrainToken(admitted(pod({}), config))).toBe('token-number-2-0123456789');
  });

  it('the default is 192 random bits, different per pod', () => {
    const tokens = new Set([1, 2, 3].map(() => existingDrainToken(admitted(pod({}), testInjectionConfig))));
    expect(tokens.size).toBe(3);
    for (const t of tokens) expect(t).toMatch(/^[A-Za-z0-9_-]{32}$/);
  });
});

describe('the sidecar probes (slow start on a CPU-starved node)', () => {
  const sidecarOf = (p: V1Pod) => {
    const d = decidePod(p, 'shop', testInjectionConfig);
    if (d.kind !== 'patch') throw new Error(`expected a patch, got ${JSON.stringify(d)}`);
    const spec = jsonpatch.applyPatch(structuredClone(p), d.patch, true, false).newDocument.spec!;
    return [...(spec.initContainers ?? []), ...spec.containers].find((c) => c.name === 'kueuer-sidecar')!;
  };

  it.each([
    ['native', {}],
    ['classic', { 'kueuer.io/native-sidecar': 'false' }],
  ])(
    '%s: a startup probe on /healthz gives ~2 min to listen before liveness starts; liveness gives 5 s to answer; readiness unchanged',
    (_mode, annotations) => {
      const c = sidecarOf(pod(annotations));
      const startup = c.startupProbe!;
      expect(startup.httpGet).toEqual({ path: '/healthz', port: 'kueuer-admin' });
      expect(startup.periodSeconds! * startup.failureThreshold!).toBeGreaterThanOrEqual(120);
      expect(startup.periodSeconds).toBeLessThanOrEqual(2);
      // 5 s to answer, not the kubelet's default 1 s: a running sidecar on a CPU-starved node was killed for answering late.
      expect(c.livenessProbe).toEqual({ httpGet: { path: '/healthz', port: 'kueuer-admin' }, periodSeconds: 10, timeoutSeconds: 5, failureThreshold: 3 });
      expect(c.readinessProbe).toEqual({ httpGet: { path: '/readyz', port: 'kueuer-admin' }, periodSeconds: 5 });
    },
  );
});
