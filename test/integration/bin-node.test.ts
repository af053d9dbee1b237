/**
 * bin/kueuer.js on a Node older than package.json's `engines` (`npx kueuer`
 * on the system Node): it runs itself on the project's Node
 * (node_modules/node/bin/node) or says which Node it needs.
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..');

/**
 * A project laid out as the real one (bin/kueuer.js, package.json) whose
 * `engines` no Node meets, so the running Node is always too old; `projectNode`
 * is the script standing in for node_modules/node/bin/node.
 */
function project(projectNode?: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'kueuer-bin-'));
  mkdirSync(join(dir, 'bin'));
  copyFileSync(join(root, 'bin', 'kueuer.js'), join(dir, 'bin', 'kueuer.js'));
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module', engines: { node: '>=99.1' } }));
  if (projectNode !== undefined) {
    mkdirSync(join(dir, 'node_modules', 'node', 'bin'), { recursive: true });
    writeFileSync(join(dir, 'node_modules', 'node', 'bin', 'node'), `#!/bin/sh\n${projectNode}\n`);
    chmodSync(join(dir, 'node_modules', 'node', 'bin', 'node'), 0o755);
  }
  return dir;
}

describe('bin/kueuer.js on a Node older than engines', () => {
  it('runs itself on the project Node with the same arguments and exits with its code', () => {
    const dir = project('echo "project node ran $1 with: $2 $3 (KUEUER_REEXEC_NODE=$KUEUER_REEXEC_NODE)"; exit 7');
    const r = spawnSync(process.execPath, [join(dir, 'bin', 'kueuer.js'), 'inject', '--help'], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(`project node ran ${join(dir, 'bin', 'kueuer.js')} with: inject --help (KUEUER_REEXEC_NODE=1)\n`);
    expect(r.status).toBe(7);
  });

  it('passes a SIGTERM on to the project Node once and exits as it does', async () => {
    const dir = project('trap \'echo "got TERM"; exit 0\' TERM; echo ready; while :; do sleep 0.05; done');
    const child = spawn(process.execPath, [join(dir, 'bin', 'kueuer.js'), 'local'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c) => (out += c));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    const until = Date.now() + 10_000;
    while (!out.includes('ready')) {
      if (Date.now() > until) throw new Error(`the project Node never started: ${out}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    expect(await exited).toBe(0);
    clearTimeout(timer);
    expect(out).toBe('ready\ngot TERM\n');
  });

  it('without the project Node: exits 1 naming the Node it needs, the one it found and what to do', () => {
    const dir = project();
    const r = spawnSync(process.execPath, [join(dir, 'bin', 'kueuer.js'), '--version'], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      `kueuer: needs Node >=99.1 (package.json engines); ${process.execPath} is Node ${process.version}. ` +
        'Run `npm ci` in the project (it installs Node 24 as the `node` dev dependency, which this command then uses) or put Node 24 first on PATH.\n',
    );
  });

  it('the project Node meets engines: the CLI runs on it, so a re-run never loops', () => {
    const r = spawnSync(join(root, 'node_modules', 'node', 'bin', 'node'), [join(root, 'bin', 'kueuer.js'), '--version'], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^kueuer \d+\.\d+\.\d+/);
    expect(r.status).toBe(0);
  });
});
