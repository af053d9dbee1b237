/**
 * A real Kubernetes control plane on loopback, the way controller-runtime's
 * envtest starts one: etcd with a temporary data dir, kube-apiserver with RBAC,
 * and kube-controller-manager running the deployment, replicaset, HPA,
 * namespace and garbage-collector controllers. No kubelet: pods are stored
 * (and admitted) but never run. Binaries come from scripts/dev/k8s-binaries.sh.
 *
 * With `forPods` (the real node of test/helpers/node.ts) it is the control
 * plane of a cluster that runs pods: the apiserver listens on the node's
 * bridge address (pods reach it through the `kubernetes` Service), admits
 * ServiceAccounts, dials the kubelet with a client certificate, and the
 * controller manager adds the controllers pods need, plus a kube-scheduler.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, createWriteStream } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './net.js';
import { waitFor } from './poll.js';

const root = join(import.meta.dirname, '..', '..');

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type KubeJson = Record<string, any>;

/** A kubectl result's stdout; throws naming `what` with kubectl's message when it failed. */
export function mustSucceed(r: { code: number; stdout: string; stderr: string }, what: string): string {
  if (r.code !== 0) throw new Error(`${what}: ${r.stderr || r.stdout}`);
  return r.stdout;
}

/** Whether an object's status has the condition `type` True (a Pod's Ready, an APIService's Available, a ScaledObject's Ready). */
export function hasCondition(o: KubeJson | null | undefined, type: string): boolean {
  return (o?.status?.conditions as KubeJson[] | undefined)?.some((c) => c.type === type && c.status === 'True') ?? false;
}

export interface ControlPlane {
  /** https://127.0.0.1:PORT */
  server: string;
  kubeconfig: string;
  binDir: string;
  dir: string;
  /** ca.crt/.key, admin.crt/.key (system:masters), sa.key/.pub: what scripts/dev/control-plane-certs.sh made. */
  certs: string;
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

export function startLogged(bin: string, args: string[], logFile: string): ChildProcess {
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const log = createWriteStream(logFile);
  child.stdout!.pipe(log);
  child.stderr!.pipe(log);
  return child;
}

export function get(url: string, options: https.RequestOptions = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const mod = url.startsWith('https') ? https : http;
    const req = mod.get(url, options, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
  });
}

export interface ControlPlaneOptions {
  /** The Service CIDR (--service-cluster-ip-range); 10.0.0.0/24 by default. */
  serviceCidr?: string;
  /** More kube-controller-manager controllers for a pod-less control plane (e.g. endpoint, endpointslice, endpointslicemirroring). */
  controllers?: string[];
  /** A control plane for a cluster that runs pods (see the header); the apiserver listens on `forPods.address`. */
  forPods?: {
    /** A local address pods can reach (the node's bridge gateway): the apiserver binds and advertises it. */
    address: string;
  };
}

/** The controllers of a cluster whose pods run: ServiceAccounts and their CA, endpoints, the node's taints, pod GC. */
const podControllers = [
  'root-ca-cert-publisher',
  'serviceaccount',
  'serviceaccount-token',
  'endpoint',
  'endpointslice',
  'endpointslicemirroring',
  'nodelifecycle',
  'podgc',
];

/** The first address of a CIDR (the `kubernetes` Service's ClusterIP). */
export function firstServiceIp(cidr: string): string {
  const [base] = cidr.split('/');
  const octets = base!.split('.').map(Number);
  octets[3] = octets[3]! + 1;
  return octets.join('.');
}

/** Re-signs the apiserver's serving certificate with extra IP SANs (the bridge address, the `kubernetes` ClusterIP). */
function resignApiserverCert(certs: string, ips: string[]): void {
  const sans = ['IP:127.0.0.1', ...ips.map((ip) => `IP:${ip}`), 'DNS:localhost', 'DNS:kubernetes', 'DNS:kubernetes.default', 'DNS:kubernetes.default.svc'];
  const ext = join(certs, 'apiserver-pods.ext');
  writeFileSync(ext, `subjectAltName=${sans.join(',')}\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n`);
  const csr = join(certs, 'apiserver.csr');
  execFileSync('openssl', ['req', '-new', '-key', join(certs, 'apiserver.key'), '-subj', '/CN=kube-apiserver', '-out', csr], { stdio: 'ignore' });
  execFileSync(
    'openssl',
    [
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      join(certs, 'ca.crt'),
      '-CAkey',
      join(certs, 'ca.key'),
      '-CAcreateserial',
      '-sha256',
      '-days',
      '2',
      '-extfile',
      ext,
      '-out',
      join(certs, 'apiserver.crt'),
    ],
    { stdio: 'ignore' },
  );
}

/** `binDir`: from the global setup (inject('k8sBinDir')), which built the binaries before the tests started. */
export async function startControlPlane(binDir: string, options: ControlPlaneOptions = {}): Promise<ControlPlane> {
  if (!binDir) throw new Error('no control-plane binaries: the global setup runs scripts/dev/k8s-binaries.sh');
  const serviceCidr = options.serviceCidr ?? '10.0.0.0/24';
  const address = options.forPods?.address ?? '127.0.0.1';
  const dir = mkdtempSync(join(tmpdir(), 'kueuer-cp-'));
  const certs = join(dir, 'certs');
  execFileSync('bash', [join(root, 'scripts', 'dev', 'control-plane-certs.sh'), certs], { stdio: 'ignore' });
  if (options.forPods) resignApiserverCert(certs, [address, firstServiceIp(serviceCidr)]);
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
  await waitFor(async () => (await get(`${etcdUrl}/health`)) === 200, 30_000, 'etcd', {
    logFile: etcdLog,
    child: children.at(-1),
    intervalMs: 200,
    tolerateErrors: true,
  });

  const server = `https://${address}:${apiPort}`;
  const podFlags = options.forPods
    ? [
        `--kubelet-client-certificate=${join(certs, 'admin.crt')}`,
        `--kubelet-client-key=${join(certs, 'admin.key')}`,
        '--kubelet-preferred-address-types=InternalIP',
      ]
    : // No pods run: no ServiceAccount tokens to mount, no endpoint for the `kubernetes` Service.
      ['--disable-admission-plugins=ServiceAccount', '--endpoint-reconciler-type=none'];
  const apiLog = join(dir, 'kube-apiserver.log');
  children.push(
    startLogged(
      join(binDir, 'kube-apiserver'),
      [
        `--etcd-servers=${etcdUrl}`,
        `--secure-port=${apiPort}`,
        `--bind-address=${address}`,
        `--advertise-address=${address}`,
        `--cert-dir=${join(dir, 'apiserver-certs')}`,
        `--tls-cert-file=${join(certs, 'apiserver.crt')}`,
        `--tls-private-key-file=${join(certs, 'apiserver.key')}`,
        `--client-ca-file=${join(certs, 'ca.crt')}`,
        '--authorization-mode=RBAC',
        '--service-account-issuer=https://kubernetes.default.svc',
        `--service-account-key-file=${join(certs, 'sa.pub')}`,
        `--service-account-signing-key-file=${join(certs, 'sa.key')}`,
        `--service-cluster-ip-range=${serviceCidr}`,
        ...podFlags,
        '--allow-privileged=true',
        '--enable-priority-and-fairness=false',
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
  await waitFor(async () => (await get(`${server}/readyz`, clientTls)) === 200, 90_000, 'kube-apiserver', {
    logFile: apiLog,
    child: children.at(-1),
    intervalMs: 200,
    tolerateErrors: true,
  });

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

  /** Starts a control-plane component (name = binary) with its secure port on loopback, and waits for its /healthz. */
  const startComponent = async (name: string, port: number, args: string[]) => {
    const log = join(dir, `${name}.log`);
    children.push(
      startLogged(
        join(binDir, name),
        [
          `--kubeconfig=${kubeconfig}`,
          '--leader-elect=false',
          '--bind-address=127.0.0.1',
          `--secure-port=${port}`,
          `--cert-dir=${join(dir, `${name}-certs`)}`,
          ...args,
        ],
        log,
      ),
    );
    await waitFor(async () => (await get(`https://127.0.0.1:${port}/healthz`, { rejectUnauthorized: false })) === 200, 60_000, name, {
      logFile: log,
      child: children.at(-1),
      intervalMs: 200,
      tolerateErrors: true,
    });
  };
  await startComponent('kube-controller-manager', kcmPort, [
    `--controllers=${['deployment', 'replicaset', 'horizontalpodautoscaling', 'namespace', 'garbagecollector', ...(options.forPods ? podControllers : []), ...(options.controllers ?? [])].join(',')}`,
    ...(options.forPods ? [`--root-ca-file=${join(certs, 'ca.crt')}`, `--service-account-private-key-file=${join(certs, 'sa.key')}`] : []),
    '--use-service-account-credentials=false',
    '--horizontal-pod-autoscaler-sync-period=5s',
  ]);
  if (options.forPods) await startComponent('kube-scheduler', await freePort(), []);

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
    certs,
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
