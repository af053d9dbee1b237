/**
 * `kueuer inject` golden files: each `<case>.input.yaml` (its first line may
 * be `# args: …`) goes through the real CLI (dist/) on stdin; stdout must
 * equal `<case>.expected.yaml` and stderr `<case>.expected.stderr` (exit 0),
 * or, for a manifest the webhook would refuse, stderr must equal
 * `<case>.refused.txt` with exit 1 and nothing on stdout. The printed manifest
 * injected again must come out unchanged. UPDATE_GOLDEN=1 rewrites the expected files.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { kueuerVersion } from '../../shared/version.js';

const root = join(import.meta.dirname, '..', '..');
const dir = join(root, 'test', 'golden', 'inject');
const cases = readdirSync(dir)
  .filter((f) => f.endsWith('.input.yaml'))
  .map((f) => f.replace('.input.yaml', ''))
  .sort();
const update = process.env.UPDATE_GOLDEN === '1';
const IMAGE = ['--sidecar-image', 'ghcr.io/kueuer/kueuer:test'];

function inject(args: string[], input: string): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [join(root, 'bin', 'kueuer.js'), 'inject', ...args], { input, encoding: 'utf8', env: { PATH: process.env.PATH } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/**
 * The release's version, recorded in the status annotation, as a placeholder. Drain tokens are
 * not replaced: they are derived from the input, so the golden files pin them.
 */
const normalise = (text: string): string => text.replaceAll(`"version":"${kueuerVersion()}"`, '"version":"VERSION"');

function expectGolden(file: string, actual: string): void {
  const path = join(dir, file);
  if (update) {
    if (actual === '') rmSync(path, { force: true });
    else writeFileSync(path, actual);
  }
  expect(actual).toBe(existsSync(path) ? readFileSync(path, 'utf8') : '');
}

describe('kueuer inject golden files', () => {
  it('has cases, refused ones among them', () => {
    expect(cases.length).toBeGreaterThanOrEqual(5);
    expect(cases.some((c) => existsSync(join(dir, `${c}.refused.txt`)))).toBe(true);
  });

  it.each(cases)('%s', (name) => {
    const input = readFileSync(join(dir, `${name}.input.yaml`), 'utf8');
    const args = [...IMAGE, ...(/^# args: (.*)$/m.exec(input.split('\n')[0] ?? '')?.[1]?.split(' ') ?? []), '-f', '-'];
    const first = inject(args, input);
    const refused = update ? first.code === 1 : existsSync(join(dir, `${name}.refused.txt`));
    if (refused) {
      expect(first.code).toBe(1);
      expect(first.stdout).toBe('');
      expectGolden(`${name}.refused.txt`, first.stderr);
      return;
    }
    expect(first.code, first.stderr).toBe(0);
    expectGolden(`${name}.expected.yaml`, normalise(first.stdout));
    expectGolden(`${name}.expected.stderr`, first.stderr);
    // Injecting twice is injecting once.
    const second = inject(args, first.stdout);
    expect(second.code).toBe(0);
    expect(second.stdout).toBe(first.stdout);
  });
});

describe('kueuer inject, the command', () => {
  const drainTokens = (yaml: string): string[] => [...yaml.matchAll(/Bearer ([A-Za-z0-9_-]{32})(?![A-Za-z0-9_-])/g)].map((m) => m[1]!);

  it('prints byte-identical output for the same input (a GitOps render shows no diff); each workload its own drain token, changed only with its pod template', () => {
    const input = readFileSync(join(dir, 'deployment-service-cronjob.input.yaml'), 'utf8');
    const first = inject([...IMAGE, '-f', '-'], input);
    const second = inject([...IMAGE, '-f', '-'], input);
    expect(first.code, first.stderr).toBe(0);
    expect(second.stdout).toBe(first.stdout);
    const tokens = new Set(drainTokens(first.stdout));
    expect(tokens.size).toBe(2); // the Deployment's and the CronJob's
    const deployment = (replicas: number, image: string): string =>
      [
        'apiVersion: apps/v1',
        'kind: Deployment',
        'metadata: {name: web}',
        'spec:',
        `  replicas: ${replicas}`,
        '  selector: {matchLabels: {app: web}}',
        '  template:',
        '    metadata: {labels: {app: web, kueuer.io/inject: "true"}}',
        `    spec: {containers: [{name: web, image: ${image}, ports: [{containerPort: 8080}]}]}`,
        '',
      ].join('\n');
    const token = (yaml: string): string | undefined => drainTokens(inject([...IMAGE, '-f', '-'], yaml).stdout)[0];
    const base = token(deployment(1, 'web:1'));
    expect(base).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(token(deployment(3, 'web:1')), 'scaling must not roll the pods').toBe(base);
    expect(token(deployment(1, 'web:2')), 'a new pod template gets a new token').not.toBe(base);
  });

  it('reads a file given with --filename, and -n sets the namespace of objects that name none', () => {
    const file = join(dir, 'statefulset-job-pod.input.yaml');
    const r = inject([...IMAGE, '--filename', file, '-n', 'team-a'], '');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('value: team-a.one-off');
    expect(r.stdout).toContain('value: data.db-api');
  });

  it('a missing file or bad YAML exits 1 naming it; no -f exits 2 naming the flag', () => {
    const missing = inject(['-f', '/nonexistent/deploy.yaml'], '');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^kueuer inject: cannot read \/nonexistent\/deploy.yaml: ENOENT/);
    const bad = inject(['-f', '-'], 'kind: Pod\n---\nmetadata: [unclosed\n');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^kueuer inject: invalid YAML in stdin: document 2: /);
    const none = inject([], '');
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('missing --filename (or KUEUER_INJECT_FILENAME)');
  });

  it('refuses documents that are not Kubernetes objects, an empty manifest and a bad namespace, printing nothing', () => {
    const cases: Array<[string, RegExp]> = [
      [
        'hello\n---\n42\n',
        /^kueuer inject: document 1 of stdin: not a Kubernetes object \(a map with apiVersion and kind\)\nkueuer inject: document 2 of stdin: not a Kubernetes object/,
      ],
      ['', /^kueuer inject: stdin holds no documents\n$/],
      [
        'kind: Deployment\nmetadata: {name: w}\n',
        /^kueuer inject: document 1 of stdin: not a Kubernetes object: apiVersion and kind must be non-empty strings\n$/,
      ],
      ['apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: "BAD NS!"}\n', /metadata.namespace: expected a namespace name, got "BAD NS!"/],
      ['apiVersion: v1\nkind: List\nitems: [7]\n', /document 1 of stdin: items\[0\]: not a Kubernetes object/],
    ];
    for (const [input, message] of cases) {
      const r = inject(['-f', '-', ...IMAGE], input);
      expect(r.code).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(message);
    }
  });

  it('keeps what values mean to kubectl (YAML 1.1): quoted yes/on/0644 stay strings, 0644 stays octal, yes stays true', () => {
    const input = [
      'apiVersion: v1',
      'kind: ConfigMap',
      'metadata: {name: flags}',
      'data: {a: "yes", b: "on", c: "0644", d: "off"}',
      '---',
      'apiVersion: v1',
      'kind: Pod',
      'metadata: {name: p}',
      'spec:',
      '  containers: [{name: c, image: i}]',
      '  volumes: [{name: v, configMap: {name: flags, defaultMode: 0644, optional: yes}}]',
      '',
    ].join('\n');
    const r = inject(['-f', '-', ...IMAGE], input);
    // Nothing here is opted in: the one word on stderr says so.
    expect(r.stderr).toBe(
      'kueuer inject: warning: nothing in stdin is opted in, so nothing was injected: add the label kueuer.io/inject: "true" to a pod template (spec.template.metadata.labels) and to its Service\'s metadata.labels\n',
    );
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('a: "yes"\n');
    expect(r.stdout).toContain('b: "on"\n');
    expect(r.stdout).toContain('c: "0644"\n');
    expect(r.stdout).toContain('d: "off"\n');
    // Values keep the user's notation, so 0644 and yes mean to kubectl what they meant.
    expect(r.stdout).toContain('defaultMode: 0644\n');
    expect(r.stdout).toContain('optional: yes\n');
    const pod = parseAllDocuments(r.stdout, { version: '1.1' })[1]?.toJS() as { spec: { volumes: Array<{ configMap: object }> } };
    expect(pod.spec.volumes[0]?.configMap).toEqual({ name: 'flags', defaultMode: 0o644, optional: true });
  });

  it("skips empty, comment-only and trailing --- documents as kubectl does, and keeps comments (Helm's # Source: lines)", () => {
    const input = [
      '---',
      '# Source: shop/templates/configmap.yaml',
      'apiVersion: v1',
      'kind: ConfigMap',
      'metadata: {name: settings} # why it is here',
      '---',
      '# Source: shop/templates/empty.yaml',
      '---',
      '',
      '---',
      '# Source: shop/templates/deployment.yaml',
      'apiVersion: apps/v1',
      'kind: Deployment',
      'metadata: {name: web}',
      'spec:',
      '  selector: {matchLabels: {app: web}}',
      '  template:',
      '    metadata: {labels: {app: web, kueuer.io/inject: "true"}}',
      '    spec:',
      '      containers:',
      '        # the app itself',
      '        - {name: app, image: example.com/web:1, ports: [{containerPort: 8080}]}',
      '---',
      '',
    ].join('\n');
    const r = inject(['-f', '-', ...IMAGE], input);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const docs = r.stdout.split(/^---$/m);
    expect(docs).toHaveLength(2);
    expect(docs[0]).toMatch(/^# Source: shop\/templates\/configmap.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n {2}name: settings\n/);
    expect(docs[0]).toContain('# why it is here\n');
    expect(docs[1]).toMatch(/^\n# Source: shop\/templates\/deployment.yaml\napiVersion: apps\/v1\n/);
    expect(docs[1]).toContain('        # the app itself\n        - name: app\n');
    expect(docs[1]).toContain('name: kueuer-sidecar');
  });

  it('--help says that opt-in is the label and that an annotation-only pod template is injected here but never reaches the webhook', () => {
    const r = inject(['--help'], '');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Opt-in is the label kueuer.io/inject: "true" on a pod template or a Service.');
    expect(r.stdout).toContain(
      'A pod template opted in by the deprecated annotation alone is injected here, but in the cluster the webhook never sees it (its objectSelector matches the label): a warning says so.',
    );
  });

  it('--version prints the version', () => {
    const r = inject(['--version'], '');
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(`kueuer ${kueuerVersion()}`);
  });
});

describe('kueuer inject warns, on stderr with exit 0, where the manifest would not work as meant', () => {
  const deployment = (template: string, metadata = '{name: web, namespace: shop}') =>
    [
      'apiVersion: apps/v1',
      'kind: Deployment',
      `metadata: ${metadata}`,
      'spec:',
      '  selector: {matchLabels: {app: web}}',
      '  template:',
      `    metadata: ${template}`,
      '    spec:',
      '      containers: [{name: app, image: example.com/web:1, ports: [{containerPort: 8080}]}]',
      '',
    ].join('\n');
  const service = (metadata: string) =>
    `apiVersion: v1\nkind: Service\nmetadata: ${metadata}\nspec: {selector: {app: web}, ports: [{port: 80, targetPort: 8080}]}\n`;
  const warnings = (stderr: string) => stderr.split('\n').filter((l) => l.startsWith('kueuer inject: warning: '));

  it('nothing opted in: says so and where the label goes, also when it is on the Deployment instead of its pod template', () => {
    const r = inject(['-f', '-', ...IMAGE], deployment('{labels: {app: web}}', '{name: web, namespace: shop, labels: {kueuer.io/inject: "true"}}'));
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('kind: Deployment');
    expect(warnings(r.stderr)).toEqual([
      'kueuer inject: warning: document 1 (Deployment shop/web): the label kueuer.io/inject: "true" is on the Deployment\'s own metadata, which the webhook never reads: put it on the pod template (spec.template.metadata.labels)',
      'kueuer inject: warning: nothing in stdin is opted in, so nothing was injected: add the label kueuer.io/inject: "true" to a pod template (spec.template.metadata.labels) and to its Service\'s metadata.labels',
    ]);
  });

  it('an unknown kueuer.io/ key: names it and the closest known key', () => {
    const r = inject(['-f', '-', ...IMAGE], deployment('{labels: {app: web, kueuer.io/inject: "true"}, annotations: {kueuer.io/concurency: "4"}}'));
    expect(r.code).toBe(0);
    expect(warnings(r.stderr)).toEqual([
      'kueuer inject: warning: document 1 (Deployment shop/web): pod template annotation kueuer.io/concurency is not a Kueuer key and is ignored; did you mean kueuer.io/concurrency?',
    ]);
  });

  it('a Service and the pods it selects on different queues: every request would time out', () => {
    const input = [
      deployment('{labels: {app: web, kueuer.io/inject: "true"}, annotations: {kueuer.io/queue: orders}}'),
      service('{name: web, namespace: shop, labels: {kueuer.io/inject: "true"}}'),
    ].join('---\n');
    const r = inject(['-f', '-', ...IMAGE], input);
    expect(r.code).toBe(0);
    expect(warnings(r.stderr)).toEqual([
      "kueuer inject: warning: document 2 (Service shop/web) queues its requests on shop.web, but the pods it selects (document 1 (Deployment shop/web)) take theirs from shop.orders: every request would wait for its timeout (504); give both the same kueuer.io/queue (the queue's name without the namespace)",
    ]);
    // The same queue on both: no word.
    const same = inject(
      ['-f', '-', ...IMAGE],
      input.replace('metadata: {name: web, namespace: shop, labels', 'metadata: {name: web, namespace: shop, annotations: {kueuer.io/queue: orders}, labels'),
    );
    expect(same.stderr).toBe('');
  });

  it('the app port guessed from the first container when several declare ports: names it and the annotation that pins it', () => {
    const input = deployment('{labels: {app: web, kueuer.io/inject: "true"}}').replace(
      '      containers: [{name: app,',
      '      containers: [{name: fluent-bit, image: fluent/fluent-bit, ports: [{containerPort: 2020}]}, {name: app,',
    );
    const r = inject(['-f', '-', ...IMAGE], input);
    expect(r.code).toBe(0);
    expect(warnings(r.stderr)).toEqual([
      "kueuer inject: warning: document 1 (Deployment shop/web): the app port 2020 is the first container's (fluent-bit) first port, guessed among containers that declare ports (also app); pin it with the annotation kueuer.io/app-port on the pod template (a number or a container port name)",
    ]);
    const pinned = inject(
      ['-f', '-', ...IMAGE],
      input.replace(
        '{labels: {app: web, kueuer.io/inject: "true"}}',
        '{labels: {app: web, kueuer.io/inject: "true"}, annotations: {kueuer.io/app-port: "8080"}}',
      ),
    );
    expect(pinned.stderr).toBe('');
  });

  it("an opt-in by the annotation alone: the cluster's webhook never sees it", () => {
    const r = inject(['-f', '-', ...IMAGE], service('{name: web, namespace: shop, annotations: {kueuer.io/inject: "true"}}'));
    expect(r.code).toBe(0);
    expect(warnings(r.stderr)).toEqual([
      'kueuer inject: warning: document 1 (Service shop/web): opted in by the annotation kueuer.io/inject alone, which the cluster\'s webhook never sees (its objectSelector matches the label): the Service would not be rewritten and its traffic would not reach Kueuer; add the label kueuer.io/inject: "true"',
    ]);
    const pods = inject(['-f', '-', ...IMAGE], deployment('{labels: {app: web}, annotations: {kueuer.io/inject: "true"}}'));
    expect(pods.code).toBe(0);
    expect(warnings(pods.stderr)).toContain(
      'kueuer inject: warning: document 1 (Deployment shop/web): opted in by the annotation kueuer.io/inject alone, which the cluster\'s webhook never sees (its objectSelector matches the label): it is injected here, but the webhook would not inject its pods; add the label kueuer.io/inject: "true"',
    );
  });
});
