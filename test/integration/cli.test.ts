import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runKueuer } from '../helpers/processes.js';

describe('kueuer CLI', () => {
  it('lists its commands', async () => {
    const r = await runKueuer(['--help']);
    expect(r.code).toBe(0);
    for (const c of ['responder', 'sidecar', 'local']) expect(r.stdout).toContain(c);
  });

  it.each(['responder', 'sidecar', 'local'])('%s --help lists every flag with its env var', async (command) => {
    const r = await runKueuer([command, '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/--backend <value>\s+KUEUER_BACKEND/);
    expect(r.stdout).toMatch(/--queue <value>\s+KUEUER_QUEUE/);
  });

  it('exits non-zero naming the flag of a bad value', async () => {
    const r = await runKueuer(['sidecar', '--app', '127.0.0.1:1', '--backend', 'amqp://h', '--queue', 'q', '--concurrency', 'lots']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('invalid --concurrency (KUEUER_CONCURRENCY) from --concurrency: expected an integer from 1 to 1000, got "lots"');
  });

  it('reads values from KUEUER_* env vars and names the variable when one is bad', async () => {
    const r = await runKueuer(['responder', '--backend', 'amqp://h', '--queue', 'q'], { KUEUER_TIMEOUT: 'forever' });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('invalid --timeout (KUEUER_TIMEOUT) from KUEUER_TIMEOUT: expected a duration such as 500ms, 60s or 2m');
  });

  it('refuses the memory backend outside `local` with a clear message', async () => {
    const r = await runKueuer(['sidecar', '--app', '127.0.0.1:1', '--backend', 'memory', '--queue', 'q', '--admin-listen', '127.0.0.1:0']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('--backend memory only works in `kueuer local`');
  });

  it('webhook: names a bad --native-sidecars value', async () => {
    const r = await runKueuer(['webhook', '--tls-cert', 'c', '--tls-key', 'k', '--native-sidecars', 'sometimes']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('invalid --native-sidecars (KUEUER_NATIVE_SIDECARS) from --native-sidecars: expected one of auto, true, false, got "sometimes"');
  });

  it('webhook: a missing certificate file is a start-up failure naming the file', async () => {
    const r = await runKueuer(['webhook', '--tls-cert', '/nonexistent/tls.crt', '--tls-key', '/nonexistent/tls.key', '--native-sidecars', 'true'], {
      KUBECONFIG: '/nonexistent/kubeconfig',
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/cannot start: .*(\/nonexistent\/|kubeconfig|Kubernetes)/);
  });

  it('responder: --queue is required unless --routes cluster', async () => {
    const r = await runKueuer(['responder', '--backend', 'amqp://127.0.0.1:1']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('missing --queue (or KUEUER_QUEUE): required unless --routes cluster');
  });

  it('rejects an unknown command', async () => {
    const r = await runKueuer(['webhooks']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown command "webhooks"');
  });

  it('suggests the closest command for an unknown one', async () => {
    const r = await runKueuer(['webhooks']);
    expect(r.code).toBe(2);
    expect(r.stderr.split('\n')[0]).toBe('kueuer: unknown command "webhooks"; did you mean webhook?');
  });

  it.each(['local', 'sidecar', 'responder', 'webhook'])('%s: an unknown flag exits 2 suggesting the closest', async (command) => {
    const flag = command === 'webhook' ? '--tls-crt' : '--concurency';
    const meant = command === 'webhook' ? '--tls-cert' : command === 'responder' ? null : '--concurrency';
    const r = await runKueuer([command, flag, '2']);
    expect(r.code).toBe(2);
    const first = r.stderr.split('\n')[0];
    if (meant) expect(first).toBe(`kueuer ${command}: unknown flag ${flag}; did you mean ${meant}?`);
    else expect(first).toBe(`kueuer ${command}: unknown flag ${flag}`);
  });

  it('names a stray argument and a flag without its value', async () => {
    const stray = await runKueuer(['local', 'concurrency']);
    expect(stray.code).toBe(2);
    expect(stray.stderr).toContain('kueuer local: unexpected argument "concurrency"; options are given as --flag value');
    const noValue = await runKueuer(['local', '--app']);
    expect(noValue.code).toBe(2);
    expect(noValue.stderr).toContain('kueuer local: --app needs a value');
  });

  it.each([[[]], [['responder']], [['sidecar']], [['local']], [['webhook']]])('--version works on %j', async (prefix) => {
    const { version } = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'package.json'), 'utf8')) as { version: string };
    const r = await runKueuer([...prefix, '--version']);
    expect({ code: r.code, stdout: r.stdout, stderr: r.stderr }).toEqual({ code: 0, stdout: `kueuer ${version}\n`, stderr: '' });
  });
});
