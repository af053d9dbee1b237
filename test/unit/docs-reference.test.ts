/**
 * docs/reference/*.md and docs/errors.md are rendered from the code (scripts/dev/docs-*.ts): each file is
 * what the renderers make of it now (`npm run docs`, or UPDATE_GOLDEN=1 here, rewrites them), and the
 * tables cover what the code reads. What the renderers do with a region or a new command is tested too.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { COMMANDS } from '../../cli/commands.js';
import { annotationBodies, annotationCoverage } from '../../scripts/dev/docs-annotations.js';
import { GENERATED_DOCS, renderReferenceDocs } from '../../scripts/dev/docs-reference.js';
import { fillGenerated, optionTable, region, renderCliReference } from '../../scripts/dev/docs-render.js';
import { ANNOTATIONS } from '../../shared/annotations.js';
import type { OptionSpecs } from '../../shared/options.js';
import { defaultWebhookSettings } from '../../webhook/config.js';

const root = join(import.meta.dirname, '..', '..');
const read = (path: string) => readFileSync(join(root, path), 'utf8');

describe('the generated reference docs', () => {
  it('are what the code renders (npm run docs, or UPDATE_GOLDEN=1, rewrites them)', () => {
    const rendered = renderReferenceDocs(read);
    for (const path of GENERATED_DOCS) {
      if (process.env.UPDATE_GOLDEN) writeFileSync(join(root, path), rendered[path]);
      expect(read(path), `${path} is stale: run npm run docs`).toBe(rendered[path]);
    }
  });

  it('list every command and every flag with its variable and default', () => {
    const cli = read('docs/reference/cli.md');
    for (const command of COMMANDS)
      for (const spec of Object.values(command.options as OptionSpecs)) {
        const dflt =
          spec.defaultValue === undefined ? (spec.optional ? 'optional' : 'required') : spec.defaultValue === '' ? 'none' : `\`${spec.defaultValue}\``;
        expect(cli, `${command.name} --${spec.flag}`).toMatch(
          new RegExp(`^\\| \`--${spec.flag}\`[^|]* \\| \`${spec.env}\` \\| ${dflt.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\|`, 'm'),
        );
      }
  });
});

describe('docs/reference/annotations.md', () => {
  it('lists on each kind of object exactly the annotations the webhook reads there', () => {
    const coverage = annotationCoverage();
    // The probe finds what the parsers read (12 pod, 2 Service and 6 workload annotations when this was written).
    for (const [i, least] of [12, 2, 6].entries()) expect(coverage[i]!.read.length).toBeGreaterThanOrEqual(least);
    for (const { table, read, documented } of coverage) expect(documented, table).toEqual(read);
  });

  it('names every kueuer.io/ key the code defines', () => {
    const doc = Object.values(annotationBodies()).join('\n');
    for (const key of Object.values(ANNOTATIONS)) expect(doc, key).toContain(`| \`${key}\` |`);
  });

  it("states the sidecar's default requests and limit as the webhook's defaults", () => {
    const s = defaultWebhookSettings();
    const rows = annotationBodies()['annotations pod']!.split('\n');
    const row = (key: string) => rows.find((l) => l.startsWith(`| \`${key}\` |`))!.split('|')[2];
    expect(row(ANNOTATIONS.sidecarCpuRequest)).toContain(`\`${s.sidecarCpuRequest}\``);
    expect(row(ANNOTATIONS.sidecarMemoryRequest)).toContain(`\`${s.sidecarMemoryRequest}\``);
    expect(row(ANNOTATIONS.sidecarMemoryLimit)).toContain(`\`${s.sidecarMemoryLimit}\``);
    expect(row(ANNOTATIONS.sidecarCpuLimit)!.trim()).toBe('none');
  });
});

describe('the renderers', () => {
  const specs: OptionSpecs = {
    a: { flag: 'alpha', env: 'K_ALPHA', description: 'one | two', defaultValue: '1s', parse: String },
    b: { flag: 'beta', env: 'K_BETA', description: 'needed', parse: String },
    c: { flag: 'gamma', env: 'K_GAMMA', description: 'maybe', optional: true, parse: String },
  };

  it('render an option table with defaults, required and optional, short flags and escaped pipes', () => {
    expect(optionTable(specs, { '-b': '--beta' }).split('\n')).toEqual([
      '| flag | env var | default | meaning |',
      '|---|---|---|---|',
      '| `--alpha` | `K_ALPHA` | `1s` | one \\| two |',
      '| `--beta` (`-b`) | `K_BETA` | required | needed |',
      '| `--gamma` | `K_GAMMA` | optional | maybe |',
    ]);
  });

  it('replace only the generated regions, and refuse a region nothing renders or a body with no region', () => {
    const doc = `# T\n\nprose\n\n${region('x', 'old\nrows')}\n\nmore prose\n`;
    expect(fillGenerated(doc, { x: 'new' })).toBe(`# T\n\nprose\n\n${region('x', 'new')}\n\nmore prose\n`);
    expect(() => fillGenerated(doc, {})).toThrow('generated regions nothing renders: x');
    expect(() => fillGenerated(doc, { x: '', y: '' })).toThrow('no region for: y');
  });

  it('give a command the CLI reference has no section for a section of its own, at the end', () => {
    const one = { name: 'one', usage: 'kueuer one --alpha X [options]', summary: 'First.', options: specs };
    const two = { name: 'three', usage: 'kueuer three --beta Y\n       kueuer three [options]', summary: 'Third.', options: { b: specs.b! } };
    const doc = `# CLI\n\n${region('synopsis', '')}\n\n## one\n\n${region('options one', '')}\n`;
    const out = renderCliReference(doc, [one, two]);
    expect(out).toContain(region('synopsis', '```\nkueuer one   --alpha X [options]\nkueuer three --beta Y\nkueuer three [options]\n```'));
    expect(out).toContain(`## one\n\n${region('options one', optionTable(specs))}\n`);
    expect(out.endsWith(`\n## \`kueuer three\`\n\nThird.\n\n${region('options three', optionTable({ b: specs.b! }))}\n`)).toBe(true);
    expect(renderCliReference(out, [one, two])).toBe(out);
  });
});
