/**
 * The responder as shipped (kustomize base, Helm chart, rendered install
 * files): its grace period covers the shutdown delay, the drain and a margin;
 * the drain covers the default request timeout and every example's
 * kueuer.io/timeout; its HPA uses only metrics an ordinary cluster serves
 * (metrics-server's Resource metrics), never a Pods or External metric that
 * needs an adapter Kueuer does not ship; V8's heap (old space plus the
 * young generation's three semi-spaces) is bounded well inside its memory
 * limit, so a burst of held clients is collected, not OOM-killed.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import { durationIn } from '../../shared/options.js';
import { quantityBytes } from '../../webhook/admission/pod-injection.js';

const root = join(import.meta.dirname, '..', '..');
const read = (path: string) => readFileSync(join(root, path), 'utf8');
const duration = durationIn(0, 24 * 3_600_000);
/** Closing the transport and the process after the drain. */
const MARGIN_S = 10;
const SHUTDOWN_DELAY_S = Number(/const CLUSTER_SHUTDOWN_DELAY_MS = ([\d_]+);/.exec(read('responder/start.ts'))![1]!.replaceAll('_', '')) / 1000;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;

const chartValues = parse(read('charts/kueuer/values.yaml')) as Json;

/** `{{ .Values.a.b }}` (optionally `| quote`, or `{{- toYaml .Values.a.b | nindent N }}`) as the chart's default values render it. */
function withDefaultValues(line: string): string | undefined {
  const m = /^(\s*)(.*)\{\{-? (toYaml )?\.Values\.([\w.]+)( \| (quote|nindent (\d+)))? \}\}(.*)$/.exec(line);
  if (!m) return line.includes('{{') ? undefined : line;
  const value = m[4]!.split('.').reduce((o: Json, k) => o?.[k], chartValues) as unknown;
  if (m[3])
    return stringify(value)
      .trimEnd()
      .replace(/^/gm, ' '.repeat(Number(m[7])));
  return `${m[1]}${m[2]}${JSON.stringify(value)}${m[8]}`;
}

/** The responder Deployment and HPA of a manifest; Helm templates are read with their values' defaults and other `{{ … }}` lines dropped. */
function responderObjects(path: string): { deployment: Json; hpa: Json } {
  const text = read(path)
    .split('\n')
    .map(withDefaultValues)
    .filter((l) => l !== undefined)
    .join('\n');
  const docs = parseAllDocuments(text).map((d) => d.toJS() as Json | null);
  const deployment = docs.find((d) => d?.kind === 'Deployment' && d.metadata?.name === 'kueuer-responder');
  const hpa = docs.find((d) => d?.kind === 'HorizontalPodAutoscaler' && d.metadata?.name === 'kueuer-responder');
  expect(deployment, `${path}: the responder Deployment`).toBeDefined();
  expect(hpa, `${path}: the responder HPA`).toBeDefined();
  return { deployment: deployment!, hpa: hpa! };
}

function exampleTimeouts(dir: string): number[] {
  const out: number[] = [];
  for (const entry of readdirSync(join(root, dir))) {
    const path = join(dir, entry);
    if (statSync(join(root, path)).isDirectory()) out.push(...exampleTimeouts(path));
    else if (entry.endsWith('.yaml')) for (const m of read(path).matchAll(/kueuer\.io\/timeout: "?([\dmshm]+)"?/g)) out.push(duration(m[1]!));
  }
  return out;
}

describe('the responder as shipped', () => {
  const configTimeout = duration(/KUEUER_TIMEOUT: (\S+)/.exec(read('manifests/base/config.yaml'))![1]!);
  const examples = exampleTimeouts('examples');

  it('finds the examples with their timeouts', () => expect(examples).toContain(300_000));

  for (const path of [
    'manifests/base/responder/deployment.yaml',
    'charts/kueuer/templates/responder.yaml',
    'manifests/install.yaml',
    'manifests/install-cert-manager.yaml',
  ]) {
    it(`${path}: grace ≥ shutdown delay + drain + margin; drain ≥ the default and the examples' timeouts; HPA on Resource metrics only; V8 heap inside the limit`, () => {
      const { deployment, hpa } = responderObjects(path);
      const pod = deployment.spec.template.spec;
      const env = pod.containers.find((c: Json) => c.name === 'responder').env as Json[];
      const drainMs = duration(env.find((e) => e.name === 'KUEUER_DRAIN_TIMEOUT')!.value as string);
      expect(pod.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(SHUTDOWN_DELAY_S + drainMs / 1000 + MARGIN_S);
      expect(drainMs).toBeGreaterThanOrEqual(configTimeout);
      for (const t of examples) expect(drainMs, 'an example Service times out later than the responder drains').toBeGreaterThanOrEqual(t);
      expect(hpa.spec.metrics.map((m: Json) => m.type)).toEqual(['Resource']);
      const container = pod.containers.find((c: Json) => c.name === 'responder') as Json;
      const flags = env.find((e) => e.name === 'NODE_OPTIONS')?.value as string | undefined;
      expect(flags, 'the responder sets its V8 heap bounds').toMatch(/--max-old-space-size=\d+/);
      const mib = (flag: string) => Number(new RegExp(`--${flag}=(\\d+)`).exec(flags!)?.[1]);
      const heapBytes = (mib('max-old-space-size') + 3 * mib('max-semi-space-size')) * 2 ** 20;
      expect(Number.isFinite(heapBytes)).toBe(true);
      // The rest of the limit holds code, sockets and buffers outside the heap (~30 KB per held client).
      expect(heapBytes).toBeLessThanOrEqual(quantityBytes(container.resources.limits.memory as string) * 0.6);
      // 10,000 held clients use ~100 MiB of old space (docs/benchmarks.md).
      expect(mib('max-old-space-size')).toBeGreaterThanOrEqual(192);
    });
  }
});

describe('callback signing keys (docs/async-callbacks.md)', () => {
  for (const path of ['manifests/base/rbac.yaml', 'manifests/install.yaml', 'manifests/install-cert-manager.yaml']) {
    it(`${path}: ClusterRole kueuer-callback-keys may get secrets, and nothing binds it cluster-wide`, () => {
      const docs = parseAllDocuments(read(path)).map((d) => d.toJS() as Json);
      const role = docs.find((d) => d?.kind === 'ClusterRole' && d.metadata?.name === 'kueuer-callback-keys');
      expect(role?.rules).toEqual([{ apiGroups: [''], resources: ['secrets'], verbs: ['get'] }]);
      const clusterWide = docs.filter((d) => d?.kind === 'ClusterRoleBinding' && d.roleRef?.name === 'kueuer-callback-keys');
      expect(clusterWide).toEqual([]);
      // The responder's own ClusterRole reads no Secrets.
      const responder = docs.find((d) => d?.kind === 'ClusterRole' && d.metadata?.name === 'kueuer-responder');
      expect(JSON.stringify(responder?.rules)).not.toContain('secrets');
    });
  }
  it('the chart binds it per namespace listed in responder.callbackNamespaces, none by default', () => {
    expect(chartValues.responder.callbackNamespaces).toEqual([]);
    const rbac = read('charts/kueuer/templates/rbac.yaml');
    expect(rbac).toContain('{{- range .Values.responder.callbackNamespaces }}');
    expect(rbac).toMatch(/kind: RoleBinding\n[\s\S]*roleRef: \{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: kueuer-callback-keys\}/);
    expect(rbac).not.toMatch(/kind: ClusterRoleBinding\n[^-]*name: kueuer-callback-keys/);
  });
});
