/**
 * The shell scripts a user runs (README): `--help` prints the usage and
 * exits 0, an unknown flag exits 2, both before any kubectl call; uninstall.sh
 * names the kubectl context it will act on and changes nothing until it is
 * confirmed on a terminal or given --yes. kubectl here is a stand-in that
 * records its calls (uninstall.test.ts runs the script against a real apiserver).
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..');

/** A PATH whose kubectl records every call in `calls` and answers the context questions. */
function fakeKubectl(): { bin: string; calls: () => string[]; env: Record<string, string> } {
  const dir = mkdtempSync(join(tmpdir(), 'kueuer-scripts-'));
  const log = join(dir, 'calls');
  const bin = join(dir, 'kubectl');
  writeFileSync(
    bin,
    `#!/bin/sh
{ printf '%s' "$*" | tr '\\n' ' '; echo; } >> '${log}'
case "$*" in
  "config current-context") echo test-ctx ;;
  "config view --minify"*) printf 'test-cluster, server https://10.9.8.7:6443' ;;
esac
exit 0
`,
  );
  chmodSync(bin, 0o755);
  return {
    bin,
    calls: () => (existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean) : []),
    env: { PATH: `${dir}:${process.env.PATH}`, KUBECTL: bin, KUEUER_UNINSTALL_TIMEOUT: '2' },
  };
}

function runScript(script: string, args: string[], env: Record<string, string>, input = '') {
  const r = spawnSync('bash', [join(root, 'scripts', script), ...args], { encoding: 'utf8', env: { ...process.env, ...env }, input, timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The calls that change the cluster, without the --context uninstall.sh pins (asserted on its own). */
const changes = (calls: string[]) => calls.map((c) => c.replace(/^--context \S+ /, '')).filter((c) => !/^(config |get |api-resources)/.test(c));
const scripts = ['install.sh', 'uninstall.sh', 'dev/render-manifests.sh', 'gen-certs.sh', 'dev/cluster.sh'];

describe('the scripts a user runs', () => {
  it.each(scripts)('%s --help prints its usage on stdout and exits 0, calling no kubectl', (script) => {
    const k = fakeKubectl();
    for (const flag of ['--help', '-h']) {
      const r = runScript(script, [flag], k.env);
      expect(r.stderr).toBe('');
      expect(r.stdout).toMatch(/^usage: /i);
      expect(r.code).toBe(0);
    }
    expect(k.calls()).toEqual([]);
  });

  it.each(scripts)('%s refuses an unknown flag with exit 2, calling no kubectl', (script) => {
    const k = fakeKubectl();
    const r = runScript(script, ['--frobnicate'], k.env);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/--frobnicate|usage/);
    expect(k.calls()).toEqual([]);
  });

  it('install.sh and uninstall.sh refuse a KUSTOMIZE_DIR that is not a directory, calling no kubectl', () => {
    const k = fakeKubectl();
    for (const script of ['install.sh', 'uninstall.sh']) {
      const r = runScript(script, ['/nonexistent/kustomization'], k.env);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('/nonexistent/kustomization is not a directory');
    }
    expect(k.calls()).toEqual([]);
  });
});

describe('scripts/uninstall.sh asks before it changes anything', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kueuer-uninstall-dir-'));
  mkdirSync(dir, { recursive: true });

  it('without a terminal and without --yes: names the context, changes nothing, exits 2 saying to pass --yes', () => {
    const k = fakeKubectl();
    const r = runScript('uninstall.sh', [dir], k.env);
    expect(r.code).toBe(2);
    expect(r.stdout.split('\n')[0]).toBe('kueuer uninstall: acting on kubectl context test-ctx (cluster test-cluster, server https://10.9.8.7:6443)');
    expect(r.stderr).toBe(
      `kueuer uninstall: nothing changed: no terminal to confirm on; run it with --yes to restore them, then delete Kueuer (kubectl delete -k ${dir}) without asking\n`,
    );
    expect(changes(k.calls())).toEqual([]);
  });

  it('with --yes: names the context, then goes ahead', () => {
    const k = fakeKubectl();
    const r = runScript('uninstall.sh', ['--yes', dir], k.env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n')[0]).toBe('kueuer uninstall: acting on kubectl context test-ctx (cluster test-cluster, server https://10.9.8.7:6443)');
    expect(changes(k.calls())).toContain(`delete -k ${dir} --ignore-not-found --wait=true`);
  });

  it('names the context it showed in every later call, so switching contexts meanwhile cannot move it to another cluster', () => {
    const k = fakeKubectl();
    const r = runScript('uninstall.sh', ['--yes', dir], k.env);
    expect(r.code).toBe(0);
    const calls = k.calls();
    const first = calls.findIndex((c) => !c.startsWith('config '));
    expect(calls.slice(0, first).every((c) => c.startsWith('config '))).toBe(true);
    expect(calls.filter((c) => c === 'config current-context')).toHaveLength(1); // the context shown is the context pinned
    expect(calls.slice(0, first)).toContainEqual(expect.stringMatching(/^config view --minify --context test-ctx /));
    expect(calls.slice(first).length).toBeGreaterThan(3);
    for (const call of calls.slice(first)) expect(call).toMatch(/^--context test-ctx /);
  });

  it.each([
    ['n', 1, false],
    ['', 1, false],
    ['y', 0, true],
  ])('on a terminal, answered %j: exits %d, changed anything: %s', (answer, code, changed) => {
    const k = fakeKubectl();
    // script(1) gives the uninstall a terminal; what it reads comes from this test's stdin.
    const r = spawnSync('script', ['-qec', `bash ${join(root, 'scripts', 'uninstall.sh')} --restore-only`, '/dev/null'], {
      encoding: 'utf8',
      env: { ...process.env, ...k.env },
      input: `${answer}\n`,
      timeout: 30_000,
    });
    expect(r.stdout).toContain('kueuer uninstall: acting on kubectl context test-ctx (cluster test-cluster, server https://10.9.8.7:6443)');
    expect(r.stdout).toContain('kueuer uninstall: restore them (Kueuer stays installed)? [y/N] ');
    expect(r.status).toBe(code);
    expect(changes(k.calls()).length > 0).toBe(changed);
  });
});
