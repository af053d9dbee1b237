/**
 * A real Kubernetes control plane on loopback, the way controller-runtime's
 * envtest starts one: etcd with a temporary data dir, kube-apiserver with RBAC,
 * and kube-controller-manager running the deployment, replicaset, HPA,
 * namespace and garbage-collector controllers. No kubelet: pods are stored
 * (and admitted) but never run. Binaries come from scripts/k8s-binaries.sh.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, createWriteStream } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './net.js';

const root = join(import.meta.dirname, '..', '..');

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type KubeJson = Record<string, any>;

export interface ControlPlane {
  /** https://127.0.0.1:PORT */
  server: string;
  kubeconfig: string;
  binDir: string;
  dir: string;
  /** Runs kubectl against this cluster. */
  kubectl(args: string[], input?: string): { code: number; stdout: string; stderr: string };
  /** `kubectl apply -f -` of a YAML text. */
  apply(yaml: string): { code: number; stdout: string; stderr: string };
  /** `kubectl get … -o json`, parsed; null when kubectl fails (not found). */
  tryGetJson(...args: string[]): KubeJson | null;
  /** As tryGetJson, but a failure throws with kubectl's message. */
  getJson(...args: string[]): KubeJson;
  /** A kubeconfig that authenticates as a ServiceAccount (a TokenRequest token), to test RBAC as shipped. */
  kubeconfigAs(namespace: string, serviceAccount: string): string;
  stop(): Promise<void>;
}

function startLogged(bin: string, args: string[], logFile: string): ChildProcess {
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const log = createWriteStream(logFile);
  child.stdout!.pipe(log);
  child.stderr!.pipe(log);
  return child;
}

async function waitUntil(what: string, timeoutMs: number, check: () => Promise<boolean>, logFile: string): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > until) {
      let tail = '';
      try {
        tail = readFileSync(logFile, 'utf8').split('\n').slice(-30).join('\n');
      } catch {
        // no log
      }
      throw new Error(`${what} did not become ready within ${timeoutMs} ms; its log ends:\n${tail}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

function get(url: string, options: https.RequestOptions = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const mod = url.startsWith('https') ? https : http;
    const req = mod.get(url, options, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
  });
}

/** `binDir`: from the global setup (inject('k8sBinDir')), which built the binaries before the tests started. */
export async function startControlPlane(binDir: string): Promise<ControlPlane> {
  if (!binDir) throw new Error('no control-plane binaries: the global setup runs scripts/k8s-binaries.sh');
  const dir = mkdtempSync(join(tmpdir(), 'kueuer-cp-'));
  const certs = join(dir, 'certs');
  execFileSync('bash', [join(root, 'scripts', 'control-plane-certs.sh'), certs], { stdio: 'ignore' });
  const children: ChildProcess[] = [];

  const [etcdPort, peerPort, apiPort, kcmPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const etcdUrl = `http://127.0.0.1:${etcdPort}`;
  const etcdLog = join(dir, 'etcd.log');
  children.push(
    startLogged(
      join(binDir, 'etcd'),
      [
        '--name=kueuer-test',
        `--data-dir=${join(dir, 'etcd')}`,
        `--listen-client-urls=${etcdUrl}`,
        `--advertise-client-urls=${etcdUrl}`,
        `--listen-peer-urls=http://127.0.0.1:${peerPort}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${peerPort}`,
        `--initial-cluster=kueuer-test=http://127.0.0.1:${peerPort}`,
        '--unsafe-no-fsync=true',
      ],
      etcdLog,
    ),
  );
  await waitUntil('etcd', 30_000, async () => (await get(`${etcdUrl}/health`)) === 200, etcdLog);

  const server = `https://127.0.0.1:${apiPort}`;
  const apiLog = join(dir, 'kube-apiserver.log');
  children.push(
    startLogged(
      join(binDir, 'kube-apiserver'),
      [
        `--etcd-servers=${etcdUrl}`,
        `--secure-port=${apiPort}`,
        '--bind-address=127.0.0.1',
        '--advertise-address=127.0.0.1',
        `--cert-dir=${join(dir, 'apiserver-certs')}`,
        `--tls-cert-file=${join(certs, 'apiserver.crt')}`,
        `--tls-private-key-file=${join(certs, 'apiserver.key')}`,
        `--client-ca-file=${join(certs, 'ca.crt')}`,
        '--authorization-mode=RBAC',
        '--service-account-issuer=https://kubernetes.default.svc',
        `--service-account-key-file=${join(certs, 'sa.pub')}`,
        `--service-account-signing-key-file=${join(certs, 'sa.key')}`,
        '--service-cluster-ip-range=10.0.0.0/24',
        '--disable-admission-plugins=ServiceAccount',
        '--allow-privileged=true',
        '--enable-priority-and-fairness=false',
        '--endpoint-reconciler-type=none',
        // The aggregation layer, for Kueuer's external metrics APIService; routed to endpoint IPs (no kube-proxy here).
        `--requestheader-client-ca-file=${join(certs, 'front-proxy-ca.crt')}`,
        '--requestheader-allowed-names=front-proxy-client',
        '--requestheader-username-headers=X-Remote-User',
        '--requestheader-group-headers=X-Remote-Group',
        '--requestheader-extra-headers-prefix=X-Remote-Extra-',
        `--proxy-client-cert-file=${join(certs, 'front-proxy-client.crt')}`,
        `--proxy-client-key-file=${join(certs, 'front-proxy-client.key')}`,
        '--enable-aggregator-routing=true',
      ],
      apiLog,
    ),
  );
  const clientTls = { ca: readFileSync(join(certs, 'ca.crt')), cert: readFileSync(join(certs, 'admin.crt')), key: readFileSync(join(certs, 'admin.key')) };
  await waitUntil('kube-apiserver', 90_000, async () => (await get(`${server}/readyz`, clientTls)) === 200, apiLog);

  /** A kubeconfig for this cluster with the given `user:` lines (client certificate or token). */
  const writeKubeconfig = (file: string, user: string, userLines: string[]): string => {
    writeFileSync(
      file,
      [
        'apiVersion: v1',
        'kind: Config',
        'clusters:',
        '- name: test',
        '  cluster:',
        `    server: ${server}`,
        `    certificate-authority: ${join(certs, 'ca.crt')}`,
        'users:',
        `- name: ${user}`,
        '  user:',
        ...userLines.map((l) => `    ${l}`),
        'contexts:',
        '- name: test',
        `  context: {cluster: test, user: ${user}}`,
        'current-context: test',
        '',
      ].join('\n'),
    );
    return file;
  };
  const kubeconfig = writeKubeconfig(join(dir, 'kubeconfig'), 'admin', [
    `client-certificate: ${join(certs, 'admin.crt')}`,
    `client-key: ${join(certs, 'admin.key')}`,
  ]);

  const kcmLog = join(dir, 'kube-controller-manager.log');
  children.push(
    startLogged(
      join(binDir, 'kube-controller-manager'),
      [
        `--kubeconfig=${kubeconfig}`,
        '--controllers=deployment,replicaset,horizontalpodautoscaling,namespace,garbagecollector',
        '--leader-elect=false',
        '--bind-address=127.0.0.1',
        `--secure-port=${kcmPort}`,
        `--cert-dir=${join(dir, 'kcm-certs')}`,
        '--use-service-account-credentials=false',
        '--horizontal-pod-autoscaler-sync-period=5s',
      ],
      kcmLog,
    ),
  );
  await waitUntil(
    'kube-controller-manager',
    60_000,
    async () => (await get(`https://127.0.0.1:${kcmPort}/healthz`, { rejectUnauthorized: false })) === 200,
    kcmLog,
  );

  const kubectl = (args: string[], input?: string) => {
    try {
      const stdout = execFileSync(join(binDir, 'kubectl'), [`--kubeconfig=${kubeconfig}`, ...args], {
        encoding: 'utf8',
        input,
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      return { code: 0, stdout, stderr: '' };
    } catch (err) {
      const e = err as { status?: number; stdout?: string; stderr?: string };
      return { code: e.status ?? 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
    }
  };

  const kubeconfigAs = (namespace: string, serviceAccount: string): string => {
    const token = kubectl(['create', 'token', serviceAccount, '-n', namespace, '--duration=2h']);
    if (token.code !== 0) throw new Error(`cannot get a token for ${namespace}/${serviceAccount}: ${token.stderr}`);
    return writeKubeconfig(join(dir, `kubeconfig-${namespace}-${serviceAccount}`), serviceAccount, [`token: ${token.stdout.trim()}`]);
  };

  const getJson = (...args: string[]): KubeJson => {
    const r = kubectl(['get', ...args, '-o', 'json']);
    if (r.code !== 0) throw new Error(r.stderr);
    return JSON.parse(r.stdout) as KubeJson;
  };

  return {
    server,
    kubeconfig,
    binDir,
    dir,
    kubectl,
    apply: (yaml) => kubectl(['apply', '-f', '-'], yaml),
    getJson,
    tryGetJson: (...args) => {
      const r = kubectl(['get', ...args, '-o', 'json']);
      return r.code === 0 ? (JSON.parse(r.stdout) as KubeJson) : null;
    },
    kubeconfigAs,
    async stop() {
      for (const c of children.reverse()) {
        c.kill('SIGTERM');
        await new Promise<void>((r) => {
          if (c.exitCode !== null || c.signalCode !== null) return r();
          const t = setTimeout(() => {
            c.kill('SIGKILL');
            r();
          }, 5000);
          c.once('exit', () => {
            clearTimeout(t);
            r();
          });
        });
      }
      if (!process.env.KUEUER_KEEP_CONTROL_PLANE_DIR) rmSync(dir, { recursive: true, force: true });
    },
  };
}
