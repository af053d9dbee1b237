/**
 * The install artefacts as shipped (issue 14, items 1–3): the kustomize base
 * and its components in every useful combination, the Helm chart
 * (charts/kueuer) and the rendered single-file manifests. Everything renders
 * with the real tools (kubectl's kustomize, helm built by scripts/dev/helm.sh) and
 * passes a real kube-apiserver's strict validation in a server-side dry run
 * (test/helpers/control-plane.ts).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { dumpYaml, loadAllYaml } from '@kubernetes/client-node';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startControlPlane, type ControlPlane } from '../helpers/control-plane.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const root = join(import.meta.dirname, '..', '..');
const chart = join(root, 'charts', 'kueuer');
const IMAGE = 'ghcr.io/kueuer/kueuer:0.1.0';
/** Kinds of other projects' CRDs (cert-manager, Prometheus Operator, KEDA), not installed in the test cluster. */
const FOREIGN_KINDS = new Set(['Certificate', 'Issuer', 'ServiceMonitor', 'PodMonitor', 'KafkaTopic', 'ClusterTriggerAuthentication']);
/** The labels helm adds to every object of the chart; kustomize has none of them. */
const HELM_LABELS = ['helm.sh/chart', 'app.kubernetes.io/managed-by', 'app.kubernetes.io/instance', 'app.kubernetes.io/version'];

interface Choice {
  broker: '' | 'rabbitmq' | 'kafka';
  certs: 'self' | 'cert-manager';
  monitoring: boolean;
  autoscaling: 'external' | 'keda';
}
const CHOICES: Choice[] = [];
for (const broker of ['', 'rabbitmq', 'kafka'] as const)
  for (const certs of ['self', 'cert-manager'] as const)
    for (const monitoring of [false, true]) for (const autoscaling of ['external', 'keda'] as const) CHOICES.push({ broker, certs, monitoring, autoscaling });

const componentsOf = (c: Choice): string[] => [
  ...(c.broker ? [c.broker] : []),
  ...(c.certs === 'cert-manager' ? ['cert-manager'] : []),
  ...(c.monitoring ? ['prometheus-operator'] : []),
  ...(c.autoscaling === 'keda' ? ['keda'] : []),
];
/** The broker URLs the rabbitmq and kafka components write (the chart has no default: it refuses a type without a URL). */
const COMPONENT_BROKER: Record<Choice['broker'], string[]> = {
  '': [],
  rabbitmq: ['broker.url=amqp://kueuer:CHANGE-ME@rabbitmq.queues.svc:5672', 'broker.rabbitmq.managementUrl=http://rabbitmq.queues.svc:15672'],
  kafka: ['broker.url=kafka://my-cluster-kafka-bootstrap.kafka.svc:9093?tls=true&sasl=scram-sha-512'],
};
const helmValuesOf = (c: Choice): string[] => [
  `broker.type=${c.broker}`,
  ...COMPONENT_BROKER[c.broker],
  `certificates.source=${c.certs}`,
  `prometheusOperator.enabled=${c.monitoring}`,
  `autoscaling.mode=${c.autoscaling}`,
];
const nameOf = (c: Choice) => componentsOf(c).join(' + ') || 'plain base';

describe('install artefacts (kustomize components, Helm chart, rendered manifests)', () => {
  let cp: ControlPlane;
  let kubectlBin: string;
  const helmBin = inject('helmBin');
  const dirs: string[] = [];

  beforeAll(async () => {
    cp = await startControlPlane(inject('k8sBinDir'));
    kubectlBin = join(cp.binDir, 'kubectl');
    // Namespaced objects are dry-run into the namespace the install creates.
    expect(cp.apply(readFileSync(join(root, 'manifests/base/namespace.yaml'), 'utf8')).code).toBe(0);
    // The keda component's Role (writing the Secret kueuer-backlog-tls) lives in KEDA's namespace, which KEDA's install creates.
    expect(cp.apply(dumpYaml({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'keda' } })).code).toBe(0);
  }, 5 * 60_000);

  afterAll(async () => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    await cp?.stop();
  }, 60_000);

  const run = (bin: string, args: string[], env: Record<string, string> = {}) => {
    const r = spawnSync(bin, args, { encoding: 'utf8', env: { ...process.env, ...env } });
    return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
  };
  const kustomizeDir = (dir: string) => run(kubectlBin, ['kustomize', dir]);

  /** A user's kustomization (in a temp dir) over the shipped base and components, as docs/operations.md shows it. */
  function userKustomization(components: string[], extra = '', resource = 'manifests/base'): string {
    const dir = mkdtempSync(join(tmpdir(), 'kueuer-kustomize-'));
    dirs.push(dir);
    const rel = (p: string) => relative(dir, join(root, p));
    writeFileSync(
      join(dir, 'kustomization.yaml'),
      [
        'apiVersion: kustomize.config.k8s.io/v1beta1',
        'kind: Kustomization',
        `resources: [${rel(resource)}]`,
        `components: [${components.map((c) => rel(`manifests/components/${c}`)).join(', ')}]`,
        extra,
      ].join('\n'),
    );
    return dir;
  }

  function render(components: string[], extra = '', resource?: string): Json[] {
    const r = kustomizeDir(userKustomization(components, extra, resource));
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    return loadAllYaml(r.stdout) as Json[];
  }

  function helmTemplate(values: string[]): Json[] {
    const r = run(helmBin, ['template', 'kueuer', chart, '--namespace', 'kueuer-system', ...values.flatMap((v) => ['--set', v])]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    return (loadAllYaml(r.stdout) as Json[]).filter((o) => o);
  }

  /** `kubectl apply --dry-run=server --validate=strict` of Kueuer's own objects: every one accepted. */
  function dryRun(objects: Json[]): void {
    const ours = objects.filter((o) => !FOREIGN_KINDS.has(o.kind));
    for (const o of objects.filter((o) => FOREIGN_KINDS.has(o.kind))) expect(o.apiVersion).toMatch(/^(cert-manager\.io|monitoring\.coreos\.com|keda\.sh)\//);
    const r = cp.kubectl(['apply', '--dry-run=server', '--validate=strict', '-f', '-'], ours.map((o) => dumpYaml(o)).join('---\n'));
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split('\n')).toHaveLength(ours.length);
  }

  const find = (objects: Json[], kind: string, name: string) => objects.find((o) => o.kind === kind && o.metadata.name === name);
  const webhookEnv = (objects: Json[]) => {
    const c = find(objects, 'Deployment', 'kueuer-webhook')!.spec.template.spec.containers[0];
    return { image: c.image as string, sidecar: c.env.find((e: Json) => e.name === 'KUEUER_SIDECAR_IMAGE').value as string };
  };
  const images = (objects: Json[]) =>
    objects.filter((o) => o.kind === 'Deployment').flatMap((d) => d.spec.template.spec.containers.map((c: Json) => c.image as string));

  /**
   * Objects by kind/namespace/name, without helm's labels (and without the
   * Namespace, which the chart leaves to --create-namespace); Secret data
   * decoded (kustomize wraps long base64 values in lines, helm does not).
   */
  function normalise(objects: Json[]): Record<string, Json> {
    const out: Record<string, Json> = {};
    for (const o of objects) {
      if (o.kind === 'Namespace') continue;
      const copy = JSON.parse(JSON.stringify(o)) as Json;
      const labels = copy.metadata.labels as Record<string, string> | undefined;
      if (labels) {
        for (const l of HELM_LABELS) delete labels[l];
        if (Object.keys(labels).length === 0) delete copy.metadata.labels;
      }
      if (o.kind === 'Secret' && copy.data) {
        for (const [k, v] of Object.entries(copy.data as Record<string, string>)) copy.data[k] = Buffer.from(v, 'base64').toString();
      }
      out[`${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`] = copy;
    }
    return out;
  }

  describe('kustomize components', () => {
    it.each(CHOICES.map((c) => [nameOf(c), c] as const))(
      "%s: base + components render together and every object passes the apiserver's strict validation (server-side dry run)",
      (_name, choice) => {
        const objects = render(componentsOf(choice));
        // One of each object, the Namespace once.
        const ids = objects.map((o) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`);
        expect(new Set(ids).size).toBe(ids.length);
        expect(objects.filter((o) => o.kind === 'Namespace')).toHaveLength(1);
        // Each component did its part.
        const secret = find(objects, 'Secret', 'kueuer-backend');
        if (choice.broker === '') expect(secret).toBeUndefined();
        else expect(Buffer.from(secret!.data.KUEUER_BACKEND, 'base64').toString()).toMatch(choice.broker === 'rabbitmq' ? /^amqp:/ : /^kafka:/);
        const apiService = find(objects, 'APIService', 'v1beta1.external.metrics.k8s.io');
        expect(find(objects, 'ConfigMap', 'kueuer-config')!.data.KUEUER_AUTOSCALING).toBe(choice.autoscaling);
        expect(apiService === undefined).toBe(choice.autoscaling === 'keda');
        const injectCa = find(objects, 'MutatingWebhookConfiguration', 'kueuer')!.metadata.annotations?.['cert-manager.io/inject-ca-from'];
        expect(injectCa).toBe(choice.certs === 'cert-manager' ? 'kueuer-system/kueuer-webhook' : undefined);
        if (apiService) expect(apiService.metadata.annotations?.['cert-manager.io/inject-ca-from']).toBe(injectCa);
        expect(objects.some((o) => o.kind === 'PodMonitor')).toBe(choice.monitoring);
        expect(webhookEnv(objects)).toEqual({ image: IMAGE, sidecar: IMAGE });
        dryRun(objects);
      },
    );

    it('rabbitmq and kafka together are refused by kustomize (one broker Secret), naming the Secret', () => {
      const r = kustomizeDir(userKustomization(['rabbitmq', 'kafka']));
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain('kueuer-backend');
    });

    it('the plain base still renders on its own (manifests/ and manifests/base) with the same objects', () => {
      const top = kustomizeDir(join(root, 'manifests'));
      const base = kustomizeDir(join(root, 'manifests/base'));
      expect(top.code).toBe(0);
      expect(top.stdout).toBe(base.stdout);
      dryRun(loadAllYaml(top.stdout) as Json[]);
    });
  });

  describe('one image setting for the Deployments and the injected sidecar', () => {
    it("`images:` in the user's kustomization (what `kustomize edit set image` writes) changes every container and KUEUER_SIDECAR_IMAGE", () => {
      const extra = 'images:\n  - {name: ghcr.io/kueuer/kueuer, newName: registry.example.com/me/kueuer, newTag: "1.2.3"}\n';
      for (const objects of [
        render([], extra),
        render(['rabbitmq', 'cert-manager', 'prometheus-operator'], extra),
        // Two levels down: over a shipped overlay, and over manifests/.
        render([], extra, 'manifests/overlays/kafka'),
        render(['keda'], extra, 'manifests'),
      ]) {
        expect(webhookEnv(objects)).toEqual({ image: 'registry.example.com/me/kueuer:1.2.3', sidecar: 'registry.example.com/me/kueuer:1.2.3' });
        expect(new Set(images(objects))).toEqual(new Set(['registry.example.com/me/kueuer:1.2.3']));
      }
      const digest = 'sha256:' + 'a'.repeat(64);
      const pinned = render([], `images:\n  - {name: ghcr.io/kueuer/kueuer, digest: "${digest}"}\n`);
      expect(webhookEnv(pinned)).toEqual({ image: `ghcr.io/kueuer/kueuer@${digest}`, sidecar: `ghcr.io/kueuer/kueuer@${digest}` });
      // Other env values are not images and stay as they are.
      const env = find(pinned, 'Deployment', 'kueuer-webhook')!.spec.template.spec.containers[0].env;
      expect(env.find((e: Json) => e.name === 'KUEUER_LISTEN').value).toBe('0.0.0.0:8443');
    });

    it('helm: image.repository and image.tag (or image.digest) set every container and KUEUER_SIDECAR_IMAGE; the tag defaults to the appVersion', () => {
      expect(webhookEnv(helmTemplate([]))).toEqual({ image: IMAGE, sidecar: IMAGE });
      const objects = helmTemplate(['image.repository=registry.example.com/me/kueuer', 'image.tag=1.2.3']);
      expect(webhookEnv(objects)).toEqual({ image: 'registry.example.com/me/kueuer:1.2.3', sidecar: 'registry.example.com/me/kueuer:1.2.3' });
      expect(new Set(images(objects))).toEqual(new Set(['registry.example.com/me/kueuer:1.2.3']));
      const digest = 'sha256:' + 'b'.repeat(64);
      expect(webhookEnv(helmTemplate([`image.digest=${digest}`])).sidecar).toBe(`ghcr.io/kueuer/kueuer@${digest}`);
    });
  });

  describe('Helm chart (charts/kueuer)', () => {
    it('helm lint --strict passes with the default values and with every option set', () => {
      for (const values of [
        [],
        helmValuesOf({ broker: 'kafka', certs: 'cert-manager', monitoring: true, autoscaling: 'keda' }),
        [
          'broker.type=rabbitmq',
          ...COMPONENT_BROKER.rabbitmq,
          'certificates.source=secret',
          'certificates.caBundle=Zm9v',
          'autoscaling.mode=prometheus-adapter',
        ],
        ['networkPolicy.enabled=true', 'networkPolicy.adminNamespaces[0]=monitoring', 'networkPolicy.appNamespaces[0]=shop'],
      ]) {
        const r = run(helmBin, ['lint', '--strict', chart, ...values.flatMap((v) => ['--set', v])]);
        expect(r.stdout + r.stderr).toContain('1 chart(s) linted, 0 chart(s) failed');
        expect(r.code).toBe(0);
      }
    });

    it.each(CHOICES.map((c) => [nameOf(c), c] as const))(
      '%s: helm template renders the same objects as kustomize for the same choices, and they pass the strict server-side dry run',
      (_name, choice) => {
        const fromHelm = helmTemplate(helmValuesOf(choice));
        const fromKustomize = render(componentsOf(choice));
        for (const o of fromHelm) expect(o.metadata.labels?.['app.kubernetes.io/managed-by'], `${o.kind}/${o.metadata.name}`).toBe('Helm');
        expect(normalise(fromHelm)).toEqual(normalise(fromKustomize));
        dryRun(fromHelm);
      },
    );

    it('certificates.caBundle fills both caBundles as scripts/install.sh does for kustomize', () => {
      const ca = Buffer.from('-----BEGIN CERTIFICATE-----\nnot really\n-----END CERTIFICATE-----\n').toString('base64');
      const fromHelm = helmTemplate(['broker.type=rabbitmq', ...COMPONENT_BROKER.rabbitmq, 'certificates.source=secret', `certificates.caBundle=${ca}`]);
      // install.sh: its CA in each empty caBundle of the rendered objects, and KUEUER_CERT_SOURCE self becomes secret (kustomize patches).
      const r = kustomizeDir(join(root, 'manifests/overlays/rabbitmq'));
      const fromKustomize = loadAllYaml(
        r.stdout.replaceAll('caBundle: ""', `caBundle: ${ca}`).replace('KUEUER_CERT_SOURCE: self', 'KUEUER_CERT_SOURCE: secret'),
      ) as Json[];
      expect(find(fromHelm, 'MutatingWebhookConfiguration', 'kueuer')!.webhooks.map((w: Json) => w.clientConfig.caBundle)).toEqual([ca, ca]);
      expect(find(fromHelm, 'APIService', 'v1beta1.external.metrics.k8s.io')!.spec.caBundle).toBe(ca);
      expect(normalise(fromHelm)).toEqual(normalise(fromKustomize));
    });

    it("autoscaling.mode prometheus-adapter and off install no APIService of Kueuer's", () => {
      for (const mode of ['prometheus-adapter', 'off']) {
        const objects = helmTemplate([`autoscaling.mode=${mode}`]);
        expect(find(objects, 'APIService', 'v1beta1.external.metrics.k8s.io')).toBeUndefined();
        expect(find(objects, 'ConfigMap', 'kueuer-config')!.data.KUEUER_AUTOSCALING).toBe(mode);
      }
    });

    it('refuses unknown choices with a message naming the value', () => {
      for (const [value, message] of [
        ['broker.type=redis', 'broker.type: expected rabbitmq, kafka or "", got "redis"'],
        ['autoscaling.mode=hpa', 'autoscaling.mode: expected external, prometheus-adapter, keda or off, got "hpa"'],
        ['certificates.source=vault', 'certificates.source: expected self, secret or cert-manager, got "vault"'],
      ] as const) {
        const r = run(helmBin, ['template', 'kueuer', chart, '--set', value]);
        expect(r.code).not.toBe(0);
        expect(r.stderr).toContain(message);
      }
    });
  });

  describe('NetworkPolicies (components/network-policy, networkPolicy.enabled)', () => {
    /** An object as its YAML says (@kubernetes/client-node's models name `from` `_from`). */
    const plain = (o: Json | undefined): Json => parse(dumpYaml(o)) as Json;
    it('the component renders with the base and passes the strict dry run; the chart renders the same policies', () => {
      const fromKustomize = render(['network-policy']);
      const policies = fromKustomize.filter((o) => o.kind === 'NetworkPolicy');
      expect(policies.map((p) => p.metadata.name).sort()).toEqual(['kueuer-responder', 'kueuer-webhook']);
      // The webhook: its port 8443 and nothing else, from wherever the apiserver comes (cluster-specific: open).
      expect(plain(find(fromKustomize, 'NetworkPolicy', 'kueuer-webhook')).spec.ingress).toEqual([{ ports: [{ port: 8443, protocol: 'TCP' }] }]);
      // The responder: client ports from anywhere, the admin port from its namespace and the namespaces given access.
      expect(plain(find(fromKustomize, 'NetworkPolicy', 'kueuer-responder')).spec.ingress).toEqual([
        {
          ports: [
            { port: 8080, protocol: 'TCP' },
            { port: 20000, endPort: 29999, protocol: 'TCP' },
          ],
        },
        {
          ports: [{ port: 9090, protocol: 'TCP' }],
          from: [{ podSelector: {} }, { namespaceSelector: { matchLabels: { 'kueuer.io/admin-access': 'allowed' } } }],
        },
      ]);
      dryRun(fromKustomize);
      const fromHelm = helmTemplate(['networkPolicy.enabled=true']);
      expect(normalise(fromHelm)).toEqual(normalise(fromKustomize));
      expect(helmTemplate([]).some((o) => o.kind === 'NetworkPolicy')).toBe(false);
    });

    it("the chart's webhookFrom, adminNamespaces and appNamespaces, and the sidecar example of the component, pass the strict dry run", () => {
      expect(cp.apply(dumpYaml({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop' } })).code).toBe(0);
      const objects = helmTemplate([
        'networkPolicy.enabled=true',
        'networkPolicy.webhookFrom[0].ipBlock.cidr=10.0.0.0/28',
        'networkPolicy.adminNamespaces[0]=monitoring',
        'networkPolicy.appNamespaces[0]=shop',
      ]);
      expect(plain(find(objects, 'NetworkPolicy', 'kueuer-webhook')).spec.ingress[0].from).toEqual([{ ipBlock: { cidr: '10.0.0.0/28' } }]);
      const sidecar = plain(objects.find((o) => o.kind === 'NetworkPolicy' && o.metadata.namespace === 'shop'));
      expect(sidecar.spec.podSelector).toEqual({ matchLabels: { 'kueuer.io/inject': 'true' } });
      const admin = sidecar.spec.ingress.find((r: Json) => r.from);
      expect(admin.ports).toEqual([{ port: 9091, protocol: 'TCP' }]);
      expect(admin.from).toContainEqual({
        namespaceSelector: { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: ['monitoring'] }] },
      });
      dryRun(objects);
      const example = loadAllYaml(readFileSync(join(root, 'manifests/components/network-policy/sidecar-admin.example.yaml'), 'utf8')) as Json[];
      for (const o of example) o.metadata.namespace = 'shop';
      dryRun(example);
      const chartDefault = helmTemplate(['networkPolicy.enabled=true', 'networkPolicy.appNamespaces[0]=shop']).filter((o) => o.metadata.namespace === 'shop');
      expect(normalise(chartDefault)).toEqual(normalise(example));
    });
  });

  describe('rendered single-file manifests', () => {
    it('manifests/install.yaml and install-cert-manager.yaml are what scripts/dev/render-manifests.sh renders now (run it after changing manifests/)', () => {
      const out = mkdtempSync(join(tmpdir(), 'kueuer-render-'));
      dirs.push(out);
      execFileSync('bash', [join(root, 'scripts/dev/render-manifests.sh'), out], {
        env: { ...process.env, KUBECTL: kubectlBin },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      for (const file of ['install.yaml', 'install-cert-manager.yaml']) {
        expect(readFileSync(join(root, 'manifests', file), 'utf8'), `manifests/${file} is stale: run scripts/dev/render-manifests.sh`).toBe(
          readFileSync(join(out, file), 'utf8'),
        );
      }
    });

    it.each(['install.yaml', 'install-cert-manager.yaml'])('manifests/%s passes the strict server-side dry run (kubectl apply -f)', (file) => {
      const objects = loadAllYaml(readFileSync(join(root, 'manifests', file), 'utf8')) as Json[];
      expect(objects.length).toBeGreaterThan(10);
      dryRun(objects);
    });
  });
});
