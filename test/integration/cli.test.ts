import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { freePort } from '../helpers/net.js';
import { msgIs, runKueuer, spawnKueuer } from '../helpers/processes.js';
import { brokers } from '../helpers/stack.js';
import { startTestApp } from '../helpers/test-app.js';
import { generateCerts } from '../helpers/webhook.js';

const bin = join(import.meta.dirname, '..', '..', 'bin', 'kueuer.js');

/** Runs the CLI for at most `ms`; a process still running then is killed and reported with code null. */
async function runFor(
  args: string[],
  ms: number,
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  const p = spawnKueuer(args, env);
  const started = Date.now();
  const timer = setTimeout(() => p.child.kill('SIGKILL'), ms);
  const { code } = await p.exited;
  clearTimeout(timer);
  return { code, stdout: p.logs.map((l) => JSON.stringify(l)).join('\n'), stderr: p.stderr.join('\n'), ms: Date.now() - started };
}

/** The test broker's URL with a part changed. */
function amqpUrlWith(change: (u: URL) => void): string {
  const u = new URL(brokers().amqp);
  change(u);
  return u.toString();
}

/** Requests through `base`, `total` of them `parallel` at a time, each given up after 2 s (a wedged process answers none). */
async function hammer(base: string, total: number, parallel: number): Promise<number> {
  let sent = 0;
  let answered = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (sent < total) {
        sent++;
        const ok = await fetch(`${base}/fill-the-log`, { signal: AbortSignal.timeout(2000) }).then(
          (r) => r.arrayBuffer().then(() => r.ok),
          () => false,
        );
        if (ok) answered++;
      }
    }),
  );
  return answered;
}

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

  // `kueuer local | head -2`, and a reader that stopped reading: logs must never hold up the signal handler or shutdown.
  it.each(['closed', 'unread'] as const)(
    'local exits promptly on SIGTERM when its stdout pipe is %s',
    async (pipe) => {
      const app = await startTestApp();
      const [listen, admin] = [await freePort(), await freePort()];
      const child = spawn(
        process.execPath,
        [bin, 'local', '--app', `127.0.0.1:${app.port}`, '--listen', `127.0.0.1:${listen}`, '--admin-listen', `127.0.0.1:${admin}`, '--concurrency', '8'],
        { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, KUEUER_LOG_LEVEL: 'info' } },
      );
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.on('exit', (code, signal) => r({ code, signal })));
      try {
        if (pipe === 'closed') child.stdout.destroy();
        else child.stdout.pause(); // nobody reads: the 64 KiB pipe fills with log lines
        for (let i = 0; ; i++) {
          if (
            await fetch(`http://127.0.0.1:${admin}/readyz`).then(
              (r) => r.ok,
              () => false,
            )
          )
            break;
          if (i > 100) throw new Error('kueuer local did not become ready');
          await new Promise((r) => setTimeout(r, 100));
        }
        // ~150 bytes of log per request: 1500 requests are several times the pipe's capacity.
        await hammer(`http://127.0.0.1:${listen}`, 1500, 16);
        const at = Date.now();
        child.kill('SIGTERM');
        const result = await Promise.race([exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 5000))]);
        expect(result).toEqual({ code: 0, signal: null });
        expect(Date.now() - at).toBeLessThan(5000);
      } finally {
        child.kill('SIGKILL');
        await app.close();
      }
    },
    60_000,
  );

  // A refusal at start-up fails the start; if the shared test broker is restarting, the refusal comes on a later attempt and
  // the process drains and exits 1 the same way (without the "cannot start:" prefix).
  describe('amqp connection failures', () => {
    const sidecar = (backend: string) => ['sidecar', '--app', '127.0.0.1:1', '--backend', backend, '--queue', 'cli-test', '--admin-listen', '127.0.0.1:0'];

    it('a missing vhost exits 1 naming the vhost, without retrying', async () => {
      const r = await runFor(sidecar(amqpUrlWith((u) => (u.pathname = '/nope'))), 60_000);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(
        /^kueuer sidecar: (cannot start: )?RabbitMQ at [^ ]+:\d+ refused to open vhost "nope": it does not exist or user "[^"]+" has no permission on it/,
      );
      expect(r.stderr.split('\n')).toHaveLength(1);
      expect(r.stdout).not.toMatch(/"msg":"[^"]*Expected ConnectionOpenOk/);
      expect(r.stdout.match(/refused to open vhost/g)).toHaveLength(1); // one attempt, no retry
    }, 65_000);

    it('a wrong password exits 1 naming the user, without retrying', async () => {
      const r = await runFor(sidecar(amqpUrlWith((u) => (u.password = 'wrong'))), 60_000);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(
        /^kueuer sidecar: (cannot start: )?RabbitMQ at [^ ]+:\d+ refused access for user "[^"]+": check the user and password in --backend \(KUEUER_BACKEND\)$/,
      );
    }, 65_000);

    it('an unreachable host is retried, each attempt logged with host, port and cause', async () => {
      const port = await freePort();
      const p = spawnKueuer(sidecar(`amqp://guest:guest@127.0.0.1:${port}`));
      try {
        const line = await p.waitForLog(
          msgIs(`cannot reach RabbitMQ at 127.0.0.1:${port}: connection refused: nothing listens on that port (ECONNREFUSED); retrying`),
          5000,
        );
        expect(line).toMatchObject({ host: '127.0.0.1', port, cause: 'connection refused: nothing listens on that port (ECONNREFUSED)' });
        await p.waitForLog((l) => l !== line && l.msg === line.msg, 5000); // still retrying
        expect(p.child.exitCode).toBeNull();
      } finally {
        p.child.kill('SIGKILL');
      }
    });
  });

  it('kafka: an unreachable broker is logged at once with host, port and cause', async () => {
    const port = await freePort();
    const p = spawnKueuer([
      'sidecar',
      '--app',
      '127.0.0.1:1',
      '--backend',
      `kafka://127.0.0.1:${port}`,
      '--queue',
      'cli-test',
      '--admin-listen',
      '127.0.0.1:0',
    ]);
    const started = Date.now();
    try {
      const line = await p.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('cannot reach Kafka broker'), 5000);
      expect(Date.now() - started).toBeLessThan(3000);
      expect(line).toMatchObject({
        host: '127.0.0.1',
        port,
        cause: 'connection refused: nothing listens on that port (ECONNREFUSED)',
        msg: `cannot reach Kafka broker 127.0.0.1:${port}: connection refused: nothing listens on that port (ECONNREFUSED); retrying`,
      });
    } finally {
      p.child.kill('SIGKILL');
    }
  });

  describe('webhook start-up checks', () => {
    const certs = generateCerts();
    const dir = mkdtempSync(join(tmpdir(), 'kueuer-cli-'));
    /** A kubeconfig whose one cluster is `server`. */
    const kubeconfigFor = (server: string): string => {
      const file = join(dir, `kubeconfig-${Math.random().toString(36).slice(2)}`);
      writeFileSync(
        file,
        [
          'apiVersion: v1',
          'kind: Config',
          'clusters:',
          '- name: c',
          '  cluster:',
          `    server: ${server}`,
          '    insecure-skip-tls-verify: true',
          'users:',
          '- name: u',
          '  user:',
          '    token: t',
          'contexts:',
          '- name: x',
          '  context: {cluster: c, user: u}',
          'current-context: x',
          '',
        ].join('\n'),
      );
      return file;
    };
    const webhook = (cert = certs.cert, key = certs.key) => [
      'webhook',
      '--tls-cert',
      cert,
      '--tls-key',
      key,
      '--listen',
      '127.0.0.1:0',
      '--autoscaling',
      'off',
    ];
    /** No kubeconfig anywhere: not in KUBECONFIG, not in $HOME, and no ServiceAccount token on a test machine. */
    const noCluster = { KUBECONFIG: '', HOME: dir, KUBERNETES_SERVICE_HOST: '' };

    it('without any Kubernetes configuration says so and what to do, in one line', async () => {
      const r = await runFor(webhook(), 20_000, noCluster);
      expect(r.code).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr).toBe(
        'kueuer webhook: cannot start: no Kubernetes configuration: KUBECONFIG is not set, ~/.kube/config does not exist, and this is not a pod with a ServiceAccount token; set KUBECONFIG to a kubeconfig file, or run the webhook in the cluster with its ServiceAccount (see manifests/)',
      );
    }, 25_000);

    it.each(['check', 'status'])(
      '%s without any Kubernetes configuration: its first line says there is no kubeconfig and what to do',
      async (command) => {
        const r = await runKueuer([command], noCluster);
        expect(r.code).toBe(1);
        // check reports on stdout, status on stderr.
        expect((command === 'check' ? r.stdout : r.stderr).split('\n')[0]).toBe(
          "FAIL no kubeconfig: set KUBECONFIG to the cluster's kubeconfig, or create ~/.kube/config (KUBECONFIG is unset and there is no ~/.kube/config, so the client fell back to http://localhost:8080, which does not answer)",
        );
        expect(r.stdout + r.stderr).not.toContain('skipTLSVerify');
      },
      25_000,
    );

    it('names a KUBECONFIG file that does not exist', async () => {
      const r = await runFor(webhook(), 20_000, { ...noCluster, KUBECONFIG: '/nonexistent/kubeconfig' });
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(
        'kueuer webhook: cannot start: KUBECONFIG names /nonexistent/kubeconfig, which does not exist: point KUBECONFIG at a kubeconfig file, or unset it to use ~/.kube/config or the in-cluster ServiceAccount',
      );
    }, 25_000);

    it.each([
      ['a closed port', async () => `https://127.0.0.1:${await freePort()}`, 'connection refused: nothing listens on that port (ECONNREFUSED)'],
      ['an unknown host', async () => 'https://kueuer-no-such-host.invalid:6443', 'DNS lookup failed: no such host (ENOTFOUND)'],
    ])(
      'an API server at %s: names the server, the cause and the fix, in one line',
      async (_, server, cause) => {
        const url = await server();
        const kubeconfig = kubeconfigFor(url);
        const r = await runFor(webhook(), 20_000, { ...noCluster, KUBECONFIG: kubeconfig });
        expect(r.code).toBe(1);
        expect(r.stdout).toBe('');
        expect(r.stderr).toBe(
          `kueuer webhook: cannot start: cannot reach the Kubernetes API at ${url} (from KUBECONFIG=${kubeconfig}): ${cause}; check that the cluster is running and that this address is right and reachable from here`,
        );
      },
      25_000,
    );

    it('checks the TLS files before the cluster: missing, not PEM, or a key of another certificate', async () => {
      const unreachable = { ...noCluster, KUBECONFIG: kubeconfigFor(`https://127.0.0.1:${await freePort()}`) };
      const missing = await runFor(webhook('/nonexistent/tls.crt', '/nonexistent/tls.key'), 20_000, unreachable);
      expect(missing.code).toBe(1);
      expect(missing.stderr).toBe(
        'kueuer webhook: cannot start: --tls-cert (KUEUER_TLS_CERT) /nonexistent/tls.crt: no such file; --tls-key (KUEUER_TLS_KEY) /nonexistent/tls.key: no such file',
      );
      const garbage = join(dir, 'garbage.pem');
      writeFileSync(garbage, 'not a certificate\n');
      const notPem = await runFor(webhook(garbage, garbage), 20_000, unreachable);
      expect(notPem.stderr).toBe(
        `kueuer webhook: cannot start: --tls-cert (KUEUER_TLS_CERT) ${garbage}: not a PEM certificate; --tls-key (KUEUER_TLS_KEY) ${garbage}: not a PEM private key`,
      );
      const other = generateCerts();
      const mismatch = await runFor(webhook(certs.cert, other.key), 20_000, unreachable);
      expect(mismatch.stderr).toBe(`kueuer webhook: cannot start: --tls-key ${other.key} is not the private key of --tls-cert ${certs.cert}`);
    }, 65_000);
  });
});
