/**
 * The facts README and the hand-written docs state about the code, scripts and manifests. The flags, annotations
 * and metrics themselves are in the generated reference (test/unit/docs-reference.test.ts); links are checked by
 * test/unit/doc-links.test.ts.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { optIn, parsePodSettings, parseServiceSettings } from '../../shared/annotations.js';
import { parseAutoscalingSettings } from '../../webhook/autoscaling/settings.js';
import { defaultWebhookSettings, injectionConfig } from '../../webhook/config.js';
import { injectObject } from '../../webhook/admission/manifest-injection.js';
import { heapCeilingMiB, HEAP_SHARE } from '../../webhook/admission/pod-injection.js';

const root = join(import.meta.dirname, '..', '..');
const source = (path: string): string => readFileSync(join(root, path), 'utf8');
const readme = source('README.md');
/** README.md, the top-level *.md files and every docs/**.md, by path. */
function markdown(dir = root, top = true): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) return (top && f === 'docs') || !top ? markdown(p, false) : [];
    return p.endsWith('.md') ? [relative(root, p)] : [];
  });
}

describe('README', () => {
  it('fits on a few screens, with the local stack and the cluster quick start near the top', () => {
    expect(readme.split('\n').length).toBeLessThan(270);
    const line = (heading: string) => readme.split('\n').indexOf(heading);
    expect(line('## Try it locally')).toBeGreaterThan(0);
    expect(line('## Quick start on a cluster')).toBeGreaterThan(0);
    expect(line('## Quick start on a cluster')).toBeLessThan(100);
  });

  it('names the two commands', () => {
    expect(readme).toContain('npm ci && npm start');
    expect(readme).toContain('npm ci && npm test');
  });

  it("states npm start's ports and variables as scripts/start-demo.mjs uses them", () => {
    const demo = source('scripts/start-demo.mjs');
    const defaults = Object.fromEntries([...demo.matchAll(/process\.env\.(\w+) \?\? '([^']+)'/g)].map((m) => [m[1], m[2]]));
    expect(Object.keys(defaults).sort()).toEqual(['DEMO_APP_PORT', 'KUEUER_ADMIN_LISTEN', 'KUEUER_LISTEN']);
    const said = /the demo app on (\d+)\n\(`DEMO_APP_PORT`\), Kueuer on (\d+) \(`KUEUER_LISTEN`\) and its metrics on (\d+)\n\(`KUEUER_ADMIN_LISTEN`\)/.exec(
      readme,
    );
    expect(said?.slice(1)).toEqual([defaults.DEMO_APP_PORT, defaults.KUEUER_LISTEN!.split(':')[1], defaults.KUEUER_ADMIN_LISTEN!.split(':')[1]]);
    expect(readme).toContain(`curl -i 'http://${defaults.KUEUER_LISTEN}/hello?name=kueuer'`);
    expect(demo).toContain("curl -i 'http://${listen}/hello?name=kueuer'");
  });

  it('opts an app in with one complete manifest that the webhook accepts and injects, its settings where the webhook reads them', async () => {
    const section = readme.slice(readme.indexOf('## Opting an app in'), readme.indexOf('\n## ', readme.indexOf('## Opting an app in') + 1));
    const yaml = /```yaml\n([\s\S]*?)```/.exec(section)![1]!;
    type Meta = { labels?: Record<string, string>; annotations?: Record<string, string> };
    type Obj = { kind: string; metadata: Meta & { name: string }; spec: Record<string, any> }; // eslint-disable-line @typescript-eslint/no-explicit-any
    const [deployment, service] = parseAllDocuments(yaml).map((d) => d.toJS() as Obj);
    expect([deployment!.kind, service!.kind]).toEqual(['Deployment', 'Service']);
    const template = deployment!.spec.template as Meta & { metadata: Meta };
    expect(optIn(template.metadata.labels, template.metadata.annotations)).toEqual({ ok: true, value: { value: true } });
    expect(optIn(service!.metadata.labels, service!.metadata.annotations)).toEqual({ ok: true, value: { value: true } });
    expect(service!.spec.selector).toEqual(deployment!.spec.selector.matchLabels);
    const pod = parsePodSettings(template.metadata.annotations);
    expect(pod.ok && pod.value.concurrency).toBeGreaterThan(1);
    const svc = parseServiceSettings(service!.metadata.annotations);
    expect(svc.ok && svc.value.timeoutMs).toBeGreaterThan(0);
    const scaling = parseAutoscalingSettings(deployment!.metadata.annotations, template.metadata.annotations);
    expect(scaling.ok && scaling.value.minReplicas).toBe(0);
    const injected = await injectObject(deployment, 'shop', injectionConfig(defaultWebhookSettings(), true, '0.0.0'), pino({ level: 'silent' }));
    expect(injected.refusal).toBeUndefined();
    expect(JSON.stringify(injected.object)).toContain('kueuer-sidecar');
  });

  it('links the operations guide, the generated reference, DEVELOPMENT.md and CONTRIBUTING.md', () => {
    for (const doc of [
      'docs/operations.md',
      'docs/reference/cli.md',
      'docs/reference/annotations.md',
      'docs/reference/metrics.md',
      'docs/errors.md',
      'DEVELOPMENT.md',
      'CONTRIBUTING.md',
    ])
      expect(readme).toContain(`](${doc})`);
  });
});

describe('DEVELOPMENT.md', () => {
  const development = source('DEVELOPMENT.md');

  it("states the test RabbitMQ's port as scripts/dev/rabbitmq.sh's default, with its management port (+3)", () => {
    const port = Number(/KUEUER_RABBITMQ_PORT:-(\d+)/.exec(source('scripts/dev/rabbitmq.sh'))?.[1]);
    expect(port).not.toBe(25672); // a system RabbitMQ's inter-node port
    expect(development).toContain(`private node on 127.0.0.1:${port} (management API on\n${port + 3};`);
  });

  it('names the one command that regenerates the docs, and package.json has it', () => {
    expect(development).toContain('npm run docs');
    expect(JSON.parse(source('package.json')).scripts.docs).toContain('docs-generate');
  });
});

describe('docs/operations.md', () => {
  const operations = source('docs/operations.md');

  it('has the operator sections, and links the uninstall script', () => {
    for (const heading of [
      '## Prerequisites',
      '## Install on a cluster',
      '## Upgrade',
      '## Uninstall',
      '## Security model',
      '## Troubleshooting',
      '## Limitations',
    ])
      expect(operations).toContain(`\n${heading}\n`);
    expect(operations).toContain('[scripts/uninstall.sh](../scripts/uninstall.sh)');
    for (const [, path] of operations.matchAll(/\]\(\.\.\/(scripts\/[\w.-]+)\)/g)) expect(existsSync(join(root, path!)), path).toBe(true);
  });

  it("states the responder's drain and grace period as the manifests set them", () => {
    const deployment = source('manifests/base/responder/deployment.yaml');
    const drain = /KUEUER_DRAIN_TIMEOUT, value: (\d+)s/.exec(deployment)![1];
    const grace = /terminationGracePeriodSeconds: (\d+)/.exec(deployment)![1];
    expect(operations).toContain(`\`KUEUER_DRAIN_TIMEOUT\` (${drain} s as shipped)`);
    expect(operations).toContain(`its \`terminationGracePeriodSeconds\` (${grace})`);
  });
});

describe('docs/reference/cli.md (its hand-written parts)', () => {
  const cli = source('docs/reference/cli.md');

  it("states the sidecar's heap ceiling as the injection computes it", () => {
    const limit = defaultWebhookSettings().sidecarMemoryLimit;
    expect(HEAP_SHARE).toBe(0.25);
    expect(cli).toContain(`bounded to a quarter of its limit (\`NODE_OPTIONS=--max-old-space-size\`, ${heapCeilingMiB(limit)} MiB for ${limit})`);
  });

  it('says that kueuer inject also injects annotation-only pods, which the webhook is never sent', () => {
    const section = cli.slice(cli.indexOf('## `kueuer inject`'), cli.indexOf('## `kueuer check`'));
    expect(section).not.toContain('as the webhook would admit it');
    expect(section).toContain('by the label **or by the\ndeprecated annotation** alone');
    expect(section).toContain('`objectSelector` sends the webhook only objects carrying the label');
  });
});

describe('README and every doc', () => {
  const files = markdown();

  it('are found', () => {
    expect(files).toEqual(expect.arrayContaining(['README.md', 'DEVELOPMENT.md', 'CONTRIBUTING.md', 'docs/operations.md', 'docs/reference/annotations.md']));
  });

  it('call the opt-in a label: no "annotated" pods, Services or workloads, no "none (annotation)"', () => {
    // docs/errors.md is generated from shared/error-catalogue.ts: its words are the code's.
    for (const path of files.filter((f) => f !== 'docs/errors.md'))
      for (const bad of [/\bannotated (pods?|Services?|workloads?)\b/i, /none \(annotation\)/]) expect(source(path), path).not.toMatch(bad);
  });

  it('point at no git tag that does not exist (?ref=), nor does manifests/kustomization.yaml', () => {
    const tags = new Set(execFileSync('git', ['tag', '--list'], { cwd: root, encoding: 'utf8' }).split('\n').filter(Boolean));
    for (const path of [...files, 'manifests/kustomization.yaml'])
      for (const [, ref] of source(path).matchAll(/\?ref=([\w.-]+)/g)) expect(tags.has(ref!), `${path}: ?ref=${ref}`).toBe(true);
  });
});
