/**
 * KEDA on the real node (test/helpers/node.ts): scripts/dev/keda.sh builds
 * KEDA's operator and metrics apiserver from the Go module proxy and their
 * images; `installKeda` applies KEDA's own kustomize tree (config/minimal:
 * CRDs, RBAC, both Deployments, the APIService; no admission webhooks) with
 * those images, the way KEDA's release YAML installs it.
 *
 * The node has no cluster DNS (no CoreDNS is built here), so the names KEDA
 * dials are given to its pods as `hostAliases` pointing at the Services'
 * ClusterIPs, which kube-proxy routes like any in-cluster client's: the
 * metrics apiserver's gRPC link to the operator
 * (keda-operator.keda.svc.cluster.local) and, once Kueuer is installed, the
 * webhook's `/backlog` (kueuer-webhook.kueuer-system.svc), see `resolveForKeda`.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { isAbsolute, join, relative } from 'node:path';
import { hasCondition, mustSucceed, type ControlPlane } from './control-plane.js';
import { runJsonScript, type ImageArchive } from './images.js';
import { rollout } from './real-install.js';

const root = join(import.meta.dirname, '..', '..');
const script = join(root, 'scripts', 'dev', 'keda.sh');

export interface KedaBuild {
  version: string;
  /** KEDA's kustomize tree (config/) in the module's source. */
  config: string;
  operator: ImageArchive;
  adapter: ImageArchive;
}

/** Reads the JSON scripts/dev/keda.sh prints on its last line. */
export function parseKedaJson(stdout: string): KedaBuild {
  const last = stdout.trim().split('\n').pop() ?? '';
  let parsed: Partial<KedaBuild>;
  try {
    parsed = JSON.parse(last) as Partial<KedaBuild>;
  } catch {
    throw new Error(`scripts/dev/keda.sh printed no JSON on its last line:\n${stdout}`);
  }
  const image = (v: Partial<ImageArchive> | undefined, name: string): ImageArchive => {
    if (typeof v?.archive !== 'string' || !isAbsolute(v.archive) || typeof v.ref !== 'string' || !v.ref.startsWith('localhost/')) {
      throw new Error(`scripts/dev/keda.sh: ${name} is not {archive, ref}: ${JSON.stringify(v)}`);
    }
    return { archive: v.archive, ref: v.ref };
  };
  if (typeof parsed.version !== 'string' || typeof parsed.config !== 'string' || !isAbsolute(parsed.config)) {
    throw new Error(`scripts/dev/keda.sh: no version or config directory in ${last}`);
  }
  return { version: parsed.version, config: parsed.config, operator: image(parsed.operator, 'operator'), adapter: image(parsed.adapter, 'adapter') };
}

/** Builds (or finds in .cache/keda/) KEDA and its images without blocking the worker; progress goes to stderr. */
export function buildKedaAsync(): Promise<KedaBuild> {
  return runJsonScript(script, parseKedaJson);
}

const OPERATOR_DNS = 'keda-operator.keda.svc.cluster.local';

/** KEDA's kustomization: config/minimal with the local images, pulled only if absent. */
export function kedaKustomization(dir: string, keda: KedaBuild): string {
  const image = (from: string, to: string) => {
    const colon = to.lastIndexOf(':');
    return `  - {name: ${from}, newName: ${to.slice(0, colon)}, newTag: ${JSON.stringify(to.slice(colon + 1))}}`;
  };
  const pullPolicy = (name: string) =>
    [
      `  - target: {kind: Deployment, name: ${name}}`,
      '    patch: |-',
      '      - {op: replace, path: /spec/template/spec/containers/0/imagePullPolicy, value: IfNotPresent}',
    ].join('\n');
  return [
    'apiVersion: kustomize.config.k8s.io/v1beta1',
    'kind: Kustomization',
    'resources:',
    `  - ${relative(dir, join(keda.config, 'minimal'))}`,
    'images:',
    image('ghcr.io/kedacore/keda', keda.operator.ref),
    image('ghcr.io/kedacore/keda-metrics-apiserver', keda.adapter.ref),
    'patches:',
    pullPolicy('keda-operator'),
    pullPolicy('keda-metrics-apiserver'),
    '',
  ].join('\n');
}

export interface KedaInstall {
  /** Seconds from apply to both Deployments ready. */
  readySeconds: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Sets a Deployment's pod hostAliases (name → the ClusterIP of a Service) and waits for its rollout. */
export async function setHostAliases(
  cp: ControlPlane,
  namespace: string,
  deployment: string,
  names: Record<string, { namespace: string; service: string }>,
): Promise<void> {
  const byIp = new Map<string, string[]>();
  for (const [hostname, svc] of Object.entries(names)) {
    const ip = cp.getJson('service', svc.service, '-n', svc.namespace).spec.clusterIP as string;
    byIp.set(ip, [...(byIp.get(ip) ?? []), hostname]);
  }
  const hostAliases = [...byIp].map(([ip, hostnames]) => ({ ip, hostnames }));
  mustSucceed(
    cp.kubectl(['-n', namespace, 'patch', 'deployment', deployment, '--type=merge', '-p', JSON.stringify({ spec: { template: { spec: { hostAliases } } } })]),
    `hostAliases of ${deployment}`,
  );
  await rollout(cp, namespace, deployment, 180);
}

/**
 * Installs KEDA on the cluster: its CRDs and namespace `keda`, RBAC, the operator and the
 * metrics apiserver (which then owns v1beta1.external.metrics.k8s.io), and waits until both
 * are ready and the APIService is Available.
 */
export async function installKeda(cp: ControlPlane, keda: KedaBuild): Promise<KedaInstall> {
  const started = Date.now();
  const cacheDir = join(root, '.cache', 'real-node');
  mkdirSync(cacheDir, { recursive: true });
  const dir = mkdtempSync(join(cacheDir, 'keda-'));
  writeFileSync(join(dir, 'kustomization.yaml'), kedaKustomization(dir, keda));
  // Server-side: KEDA's ScaledJob CRD is too large for client-side apply's last-applied annotation.
  mustSucceed(cp.kubectl(['apply', '--server-side', '--force-conflicts', '-k', dir]), 'kubectl apply -k (KEDA)');
  await setHostAliases(cp, 'keda', 'keda-metrics-apiserver', { [OPERATOR_DNS]: { namespace: 'keda', service: 'keda-operator' } });
  await rollout(cp, 'keda', 'keda-operator', 180);
  for (const until = Date.now() + 120_000; ;) {
    const api = cp.tryGetJson('apiservice', 'v1beta1.external.metrics.k8s.io');
    if (hasCondition(api, 'Available')) break;
    if (Date.now() > until) throw new Error(`KEDA's APIService v1beta1.external.metrics.k8s.io is not Available: ${JSON.stringify(api?.status)}`);
    await sleep(500);
  }
  return { readySeconds: (Date.now() - started) / 1000 };
}
