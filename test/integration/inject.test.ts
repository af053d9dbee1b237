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
 * The release's version, recorded in the status annotation, and each pod template's random drain
 * token (the sidecar's KUEUER_DRAIN_TOKEN, sent by the preStop hook), as placeholders.
 */
const normalise = (text: string): string => {
  const tokens = new Set([...text.matchAll(/Bearer ([A-Za-z0-9_-]{32})\b/g)].map((m) => m[1]!));
  let out = text.replaceAll(`"version":"${kueuerVersion()}"`, '"version":"VERSION"');
  for (const t of tokens) out = out.replaceAll(t, 'DRAIN-TOKEN');
  return out;
};

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
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('a: "yes"\n');
    expect(r.stdout).toContain('b: "on"\n');
    expect(r.stdout).toContain('c: "0644"\n');
    expect(r.stdout).toContain('d: "off"\n');
    expect(r.stdout).toContain('defaultMode: 420\n'); // 0644 octal, as kubectl reads it
    expect(r.stdout).toContain('optional: true\n');
  });

  it('--version prints the version', () => {
    const r = inject(['--version'], '');
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(`kueuer ${kueuerVersion()}`);
  });
});
