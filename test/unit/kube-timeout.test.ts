/**
 * `kueuer check` and `kueuer status` (the real CLI, dist/) against an
 * apiserver that accepts TCP but never answers: both end with a bounded
 * FAIL line naming the server and the timeout, a fix, and exit status 1.
 * Without any kubeconfig they name the server the client fell back to.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kubeconfigFix } from '../../cli/kube-call.js';
import { runKueuer } from '../helpers/processes.js';

describe('a Kubernetes API that accepts connections but never answers', () => {
  let silent: net.Server;
  let server: string;
  const sockets = new Set<net.Socket>();
  const dir = mkdtempSync(join(tmpdir(), 'kueuer-silent-'));
  const kubeconfig = join(dir, 'kubeconfig');

  beforeAll(async () => {
    silent = net.createServer((s) => {
      sockets.add(s);
      s.on('error', () => {});
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    server = `https://127.0.0.1:${(silent.address() as net.AddressInfo).port}`;
    writeFileSync(
      kubeconfig,
      `apiVersion: v1
kind: Config
clusters: [{name: silent, cluster: {server: "${server}", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: silent, context: {cluster: silent, user: u}}]
current-context: silent
`,
    );
  });

  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => silent.close(resolve));
  });

  it('kueuer check fails within the default 10 s, naming the server, with a fix', async () => {
    const started = Date.now();
    const r = await runKueuer(['check'], { KUBECONFIG: kubeconfig });
    const took = Date.now() - started;
    expect(r.stdout).toBe(
      `FAIL Kubernetes API at ${server} does not answer within 10 s\n` +
        `     fix: check the cluster is up, and that KUBECONFIG (${kubeconfig}) and its current context name it\n` +
        'kueuer check: 1 of 1 checks failed\n',
    );
    expect(r.code).toBe(1);
    expect(took).toBeGreaterThanOrEqual(10_000);
    expect(took).toBeLessThan(20_000);
  }, 30_000);

  it('kueuer status fails within --api-timeout, naming the server, with a fix', async () => {
    const started = Date.now();
    const r = await runKueuer(['status', '--api-timeout', '2'], { KUBECONFIG: kubeconfig });
    expect(r.stderr).toBe(
      `FAIL Kubernetes API at ${server} does not answer within 2 s\n` +
        `     fix: check the cluster is up, and that KUBECONFIG (${kubeconfig}) and its current context name it\n`,
    );
    expect(r.stdout).toBe('');
    expect(r.code).toBe(1);
    expect(Date.now() - started).toBeLessThan(10_000);
  }, 30_000);

  it('kueuer status --namespace (no namespace list) still fails on a silent API with the FAIL line, not a note per namespace', async () => {
    const r = await runKueuer(['status', '--api-timeout', '2', '--namespace', 'shop,web'], { KUBECONFIG: kubeconfig });
    expect(r.stderr).toBe(
      `FAIL Kubernetes API at ${server} does not answer within 2 s\n` +
        `     fix: check the cluster is up, and that KUBECONFIG (${kubeconfig}) and its current context name it\n`,
    );
    expect(r.stdout).toBe('');
    expect(r.code).toBe(1);
  }, 30_000);

  it('kueuer status without any kubeconfig names the server the client fell back to and says to set KUBECONFIG', async () => {
    const home = mkdtempSync(join(tmpdir(), 'kueuer-home-'));
    const r = await runKueuer(['status', '--api-timeout', '2'], { KUBECONFIG: '', HOME: home, KUBERNETES_SERVICE_HOST: '' });
    // Nothing answers at the fallback address: the line says there is no kubeconfig; something answers: it names the server.
    // Either way the fix says why that server was used.
    expect(r.stderr).toMatch(
      /^FAIL (no kubeconfig: set KUBECONFIG to the cluster's kubeconfig, or create ~\/\.kube\/config \(.* fell back to http:\/\/localhost:8080, which does not answer\)|Kubernetes API at http:\/\/localhost:8080: )/,
    );
    expect(r.stderr).toContain(
      "     fix: no kubeconfig found (KUBECONFIG is unset and there is no ~/.kube/config), so the client fell back to http://localhost:8080: set KUBECONFIG to the cluster's kubeconfig\n",
    );
    expect(r.code).toBe(1);
  }, 30_000);

  it('without any kubeconfig the fix names the server the client fell back to and says to set KUBECONFIG', () => {
    const home = mkdtempSync(join(tmpdir(), 'kueuer-home-'));
    expect(kubeconfigFix('http://localhost:8080', {}, home)).toBe(
      "no kubeconfig found (KUBECONFIG is unset and there is no ~/.kube/config), so the client fell back to http://localhost:8080: set KUBECONFIG to the cluster's kubeconfig",
    );
  });
});
