import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { COMMANDS } from '../../cli/commands.js';
import type { OptionSpecs } from '../../shared/options.js';
import { defaultWebhookSettings } from '../../webhook/config.js';
import { heapCeilingMiB, HEAP_SHARE } from '../../webhook/pod-injection.js';

const root = join(import.meta.dirname, '..', '..');
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const source = (path: string): string => readFileSync(join(root, path), 'utf8');
const rows = readme.split('\n').filter((l) => l.startsWith('| `--'));

/** Every markdown page under docs/ (docs/scenarios/ holds pages beside pictures and data), relative to docs/. */
const docsPages = (): string[] =>
  readdirSync(join(root, 'docs'), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.md'))
    .sort();

describe('README', () => {
  for (const command of COMMANDS) {
    for (const spec of Object.values(command.options as OptionSpecs)) {
      it(`documents ${command.name} --${spec.flag}, ${spec.env} and its default`, () => {
        const matching = rows.filter((r) => r.startsWith(`| \`--${spec.flag}\` | \`${spec.env}\` |`));
        expect(matching.length).toBeGreaterThan(0);
        const expected = spec.defaultValue === undefined ? (spec.optional ? 'optional' : 'required') : `\`${spec.defaultValue}\``;
        expect(matching.some((r) => r.split('|')[3]!.trim() === expected)).toBe(true);
      });
    }
  }

  it("states the test RabbitMQ's port as scripts/rabbitmq.sh's default, with its management port (+3)", () => {
    const port = Number(/KUEUER_RABBITMQ_PORT:-(\d+)/.exec(source('scripts/rabbitmq.sh'))?.[1]);
    expect(port).not.toBe(25672); // a system RabbitMQ's inter-node port
    expect(readme).toContain(`private node on 127.0.0.1:${port} (management API on\n${port + 3};`);
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

  it('has the operator sections, and the scripts it names exist', () => {
    for (const heading of ['## Prerequisites', '## Upgrade', '## Uninstall', '## Security model', '## Troubleshooting'])
      expect(readme).toContain(`\n${heading}\n`);
    for (const [, path] of readme.matchAll(/\]\((scripts\/[\w.-]+)\)/g)) expect(existsSync(join(root, path!)), path).toBe(true);
    expect(readme).toContain('[scripts/uninstall.sh](scripts/uninstall.sh)');
  });

  it("states the sidecar's heap ceiling as the injection computes it", () => {
    const limit = defaultWebhookSettings().sidecarMemoryLimit;
    expect(HEAP_SHARE).toBe(0.25);
    expect(readme).toContain(`bounded to a quarter of its limit (\`NODE_OPTIONS=--max-old-space-size\`, ${heapCeilingMiB(limit)} MiB for ${limit})`);
  });

  it("states the responder's drain and grace period as the manifests set them", () => {
    const deployment = source('manifests/base/responder/deployment.yaml');
    const drain = /KUEUER_DRAIN_TIMEOUT, value: (\d+)s/.exec(deployment)![1];
    const grace = /terminationGracePeriodSeconds: (\d+)/.exec(deployment)![1];
    expect(readme).toContain(`\`KUEUER_DRAIN_TIMEOUT\` (${drain} s as shipped)`);
    expect(readme).toContain(`its \`terminationGracePeriodSeconds\` (${grace})`);
  });

  it("states the sidecar's default requests and limit (Annotations) as the webhook's defaults", () => {
    const s = defaultWebhookSettings();
    const row = readme.split('\n').find((l) => l.startsWith('| `kueuer.io/sidecar-cpu-request`'));
    expect(row?.split('|')[2]).toContain(`\`${s.sidecarCpuRequest}\`, \`${s.sidecarMemoryRequest}\`, none, \`${s.sidecarMemoryLimit}\``);
  });

  it('calls the opt-in a label: no "annotated" pods, Services or workloads, no "none (annotation)"', () => {
    // docs/errors.md is generated from shared/error-catalogue.ts: its words are the code's.
    const docs = docsPages().filter((f) => f !== 'errors.md');
    for (const [path, text] of [['README.md', readme], ...docs.map((f) => [`docs/${f}`, source(`docs/${f}`)])])
      for (const bad of [/\bannotated (pods?|Services?|workloads?)\b/i, /none \(annotation\)/]) expect(text, path).not.toMatch(bad);
  });

  it('says that kueuer inject also injects annotation-only pods, which the webhook is never sent', () => {
    const section = readme.slice(readme.indexOf('### `kueuer inject`'), readme.indexOf('### `kueuer check`'));
    expect(section).not.toContain('as the webhook would admit it');
    expect(section).toContain('by the label **or by the\ndeprecated annotation** alone');
    expect(section).toContain('`objectSelector` sends the webhook only objects carrying the label');
  });

  it('points at no git tag that does not exist (?ref=) in README, docs and manifests', () => {
    const tags = new Set(execFileSync('git', ['tag', '--list'], { cwd: root, encoding: 'utf8' }).split('\n').filter(Boolean));
    const files = ['README.md', 'manifests/kustomization.yaml', ...docsPages().map((f) => `docs/${f}`)];
    for (const path of files) for (const [, ref] of source(path).matchAll(/\?ref=([\w.-]+)/g)) expect(tags.has(ref!), `${path}: ?ref=${ref}`).toBe(true);
  });

  it('names the two commands', () => {
    expect(readme).toContain('npm ci && npm start');
    expect(readme).toContain('npm ci && npm test');
  });
});
