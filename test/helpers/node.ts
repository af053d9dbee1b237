/**
 * A real single-node Kubernetes cluster on this machine, for tests that run
 * pods: the test control plane (control-plane.ts, `forPods`) plus containerd
 * (its own config, root, state and socket), runc, the CNI bridge plugin with
 * host-local IPAM on the bridge `kueuer0`, a kubelet and a kube-proxy
 * (iptables mode). Needs root; scripts/dev/node.sh installs the Debian packages and
 * builds crictl and the sandbox image.
 *
 * Network safety: pods live on 10.244.77.0/24 and Services on 10.96.77.0/24,
 * both routed only to the bridge (no masquerade, no default route in pods, an
 * empty resolv.conf, NodePorts only on the bridge address); before traffic the
 * harness checks with `ip route get` that both ranges go via the bridge.
 *
 * Host state: containerd and the kubelet run in a private mount namespace
 * (every mount they make vanishes with it), where files holding the values
 * the kubelet expects are bind-mounted over the kernel sysctls it would
 * otherwise rewrite. Everything else it changes is recorded in the lock file
 * before it changes, and undone by stop() — or by the next start, after a run
 * that crashed: processes, pods, the bridge and routes, kube-proxy's and the
 * kubelet's iptables chains, sysctls, kubepods cgroups, directories created.
 * One real cluster at a time: the lock file names its owner.
 */
import { execFile, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { get, startControlPlane, startLogged, type ControlPlane } from './control-plane.js';
import { waitFor } from './poll.js';
import { freePort } from './net.js';

const run = promisify(execFile);
const root = join(import.meta.dirname, '..', '..');

export const BRIDGE = 'kueuer0';
export const POD_CIDR = '10.244.77.0/24';
export const BRIDGE_GATEWAY = '10.244.77.1';
export const SERVICE_CIDR = '10.96.77.0/24';
export const NODE_NAME = 'kueuer-node';
/** Everything the node writes (containerd root and state, kubelet root, CNI, configs). */
const BASE = '/var/lib/kueuer-node';
/** The lock and the record of host state to undo. */
export const LOCK_FILE = '/run/kueuer-real-cluster.lock';
/** The last run's logs, kept for a look after a failure (replaced by the next run). */
export const LOG_DIR = '/tmp/kueuer-node-logs';
const SOCKET = join(BASE, 'containerd.sock');
const CGROUP_ROOT = '/sys/fs/cgroup';

/** Sysctls the harness or the CNI plugins change on the host, restored on stop. */
const HOST_SYSCTLS = [
  'net/ipv4/ip_forward',
  'net/ipv6/conf/all/forwarding',
  'net/ipv4/conf/all/route_localnet',
  'net/bridge/bridge-nf-call-iptables',
  'net/bridge/bridge-nf-call-ip6tables',
];
/** What the kubelet wants these to be (it writes them otherwise): shown to it alone, in its mount namespace. */
const KUBELET_SYSCTLS: Record<string, string> = {
  'vm/overcommit_memory': '1',
  'vm/panic_on_oom': '0',
  'kernel/panic': '10',
  'kernel/panic_on_oops': '1',
  'kernel/keys/root_maxkeys': '1000000',
  'kernel/keys/root_maxbytes': '25000000',
};
/** Directories outside BASE the node may create (hard-coded in kubelet/containerd); removed if they were not there. */
const HOST_PATHS = ['/var/lib/kubelet', '/var/log/pods', '/var/log/containers', '/run/containerd', '/var/lib/cni', '/run/netns'];

export interface RealCluster {
  controlPlane: ControlPlane;
  nodeName: string;
  /** Host address on the harness bridge; pods reach host services (brokers) here. */
  bridgeGateway: string;
  podCidr: string;
  serviceCidr: string;
  /** `ctr -n k8s.io images import` of an OCI/docker archive into the node's containerd. */
  importImage(archivePath: string): Promise<void>;
  /** crictl against the node's containerd socket; resolves stdout. */
  crictl(args: string[]): Promise<string>;
  /** Throws unless `ip` is routed via the harness bridge (call before sending traffic to a pod or Service address). */
  assertRoutedViaBridge(ip: string): void;
  /** Milliseconds: control plane up, kubelet start → node Ready, and the whole start. */
  timings: { controlPlaneMs: number; nodeReadyMs: number; startMs: number };
  /** Image names of the sandbox and busybox images scripts/dev/node.sh built (already imported). */
  images: { pause: string; busybox: string };
  stop(): Promise<void>;
}

/** The lock file's content: who runs the cluster, and what to undo. */
interface HostRecord {
  pid: number;
  sysctls: Record<string, string>;
  createdPaths: string[];
  /** Directories whose processes belong to this cluster (a crashed run's are killed by the next start). */
  processMarkers: string[];
}

const sh = (cmd: string, args: string[]) => {
  try {
    return { code: 0, stdout: execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }) };
  } catch (err) {
    const e = err as { status?: number; stdout?: string; stderr?: string };
    return { code: e.status ?? 1, stdout: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
};

const readSysctl = (name: string): string | null => {
  try {
    return readFileSync(`/proc/sys/${name}`, 'utf8').trim();
  } catch {
    return null;
  }
};

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** The pid of every process whose command line names one of the markers (paths only this cluster uses). */
export function processesMarked(markers: string[]): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    let cmdline = '';
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
    } catch {
      continue;
    }
    if (markers.some((m) => cmdline.includes(m))) pids.push(pid);
  }
  return pids;
}

async function killAll(pids: number[], graceMs: number): Promise<void> {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // already gone
    }
  }
  const until = Date.now() + graceMs;
  while (pids.some(alive) && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
  for (const pid of pids.filter(alive)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
}

/** Every kubepods cgroup directory, deepest first, in every v1 hierarchy (and the v2 one). */
function kubepodsCgroups(): string[] {
  const dirs: string[] = [];
  const walk = (dir: string) => {
    let entries: string[] = [];
    try {
      entries = readdirSync(dir, { withFileTypes: true })
        .filter((e) => e.isDirectory())
        .map((e) => e.name);
    } catch {
      return;
    }
    for (const e of entries) walk(join(dir, e));
    dirs.push(dir);
  };
  for (const hierarchy of existsSync(CGROUP_ROOT) ? readdirSync(CGROUP_ROOT) : []) {
    const top = join(CGROUP_ROOT, hierarchy, 'kubepods');
    if (existsSync(top)) walk(top);
  }
  return dirs;
}

async function removeCgroups(): Promise<void> {
  const pids = new Set<number>();
  for (const dir of kubepodsCgroups()) {
    try {
      for (const p of readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) pids.add(Number(p));
    } catch {
      // no procs file
    }
  }
  // Only pods' processes live here (containers the node started).
  await killAll([...pids], 2000);
  for (let attempt = 0; attempt < 20; attempt++) {
    let left = 0;
    for (const dir of kubepodsCgroups()) {
      try {
        rmdirSync(dir);
      } catch {
        left++;
      }
    }
    if (left === 0) return;
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Deletes every iptables rule jumping to a KUBE-* chain and every KUBE-* chain (kube-proxy's and the kubelet's), IPv4 and IPv6. */
export function removeKubeChains(): void {
  for (const tool of ['iptables', 'ip6tables']) {
    for (const table of ['filter', 'nat', 'mangle', 'raw']) {
      const rules = sh(tool, ['-w', '-t', table, '-S']);
      if (rules.code !== 0) continue;
      const lines = rules.stdout.split('\n');
      for (const line of lines) {
        const m = /^-A (\S+) (.*)$/.exec(line);
        if (m && !m[1]!.startsWith('KUBE-') && /-j KUBE-/.test(m[2]!)) {
          sh('sh', ['-c', `${tool} -w -t ${table} -D ${m[1]} ${m[2]}`]);
        }
      }
      const chains = lines.map((l) => /^-N (KUBE-\S+)$/.exec(l)?.[1]).filter((c): c is string => !!c);
      for (const chain of chains) sh(tool, ['-w', '-t', table, '-F', chain]);
      for (const chain of chains) sh(tool, ['-w', '-t', table, '-X', chain]);
    }
  }
}

/** What is left of the node on the host (bridge, routes, KUBE- rules, cgroups, mounts, state, lock, processes): empty when it is clean. */
export function nodeLeftovers(): string[] {
  const left: string[] = [];
  if (sh('ip', ['link', 'show', BRIDGE]).code === 0) left.push(`the bridge ${BRIDGE}`);
  const routes = sh('ip', ['route', 'show']).stdout;
  for (const cidr of [POD_CIDR, SERVICE_CIDR]) if (routes.includes(cidr.split('/')[0]!)) left.push(`a route to ${cidr}`);
  for (const tool of ['iptables-save', 'ip6tables-save']) {
    const kube = sh(tool, [])
      .stdout.split('\n')
      .filter((l) => l.includes('KUBE-'));
    if (kube.length > 0) left.push(`${tool}: ${kube.length} KUBE- lines (${kube[0]})`);
  }
  if (kubepodsCgroups().length > 0) left.push(`kubepods cgroups (${kubepodsCgroups()[0]})`);
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => l.includes(BASE) || l.includes('/run/netns/cni-') || l.includes('/var/lib/kubelet'));
  if (mounts.length > 0) left.push(`${mounts.length} mounts (${mounts[0]})`);
  if (existsSync(BASE)) left.push(BASE);
  if (existsSync(LOCK_FILE)) left.push(LOCK_FILE);
  const procs = processesMarked([BASE]);
  if (procs.length > 0) left.push(`processes ${procs.join(',')}`);
  return left;
}

/** Removes a directory tree that holds only (empty) directories; leaves it if any file is in it. */
function removeEmptyTree(dir: string): void {
  if (!existsSync(dir)) return;
  for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) removeEmptyTree(join(dir, e.name));
  if (readdirSync(dir).length === 0) rmdirSync(dir);
}

/** Undoes everything a record says, whether its run stopped cleanly or crashed. Idempotent. */
async function undoHost(record: HostRecord, binDir: string): Promise<void> {
  // The kubelet first (it would restart pods), then pods through the CRI (their CNI teardown releases veths and addresses).
  await killAll(processesMarked([join(BASE, 'kubelet.yaml')]), 5000);
  if (existsSync(SOCKET)) {
    const crictl = join(root, '.cache', 'node', 'bin', 'crictl');
    const endpoint = [`--runtime-endpoint=unix://${SOCKET}`, '--timeout=10s'];
    sh(crictl, [
      ...endpoint,
      'stopp',
      ...sh(crictl, [...endpoint, 'pods', '-q'])
        .stdout.split('\n')
        .filter(Boolean),
    ]);
    sh(crictl, [...endpoint, 'rmp', '-a', '-f']);
  }
  await killAll(processesMarked([BASE]), 5000);
  // The control plane's data is thrown away: no need to wait for the apiserver's graceful shutdown.
  await killAll(processesMarked(record.processMarkers), 0);
  // A crashed run's control-plane directory (etcd data, certificates); a clean stop removes its own.
  for (const marker of record.processMarkers) if (marker.includes('/kueuer-cp-')) rmSync(marker, { recursive: true, force: true });
  await removeCgroups();
  sh(join(binDir, 'kube-proxy'), ['--cleanup']);
  removeKubeChains();
  for (const link of sh('ip', ['-o', 'link', 'show', 'master', BRIDGE]).stdout.split('\n')) {
    const name = /^\d+: ([^@:]+)/.exec(link)?.[1];
    if (name) sh('ip', ['link', 'del', name]);
  }
  sh('ip', ['link', 'del', BRIDGE]);
  sh('ip', ['route', 'del', SERVICE_CIDR]);
  for (const [name, value] of Object.entries(record.sysctls)) {
    try {
      writeFileSync(`/proc/sys/${name}`, value);
    } catch {
      // not writable here
    }
  }
  // containerd's network namespaces (bind mounts that lived in the node's mount namespace).
  if (existsSync('/run/netns')) for (const ns of readdirSync('/run/netns').filter((n) => n.startsWith('cni-'))) rmSync(join('/run/netns', ns), { force: true });
  // libcni's cache of this network's results (other CNI users on the machine keep theirs).
  const cniCache = '/var/lib/cni/results';
  if (existsSync(cniCache)) for (const f of readdirSync(cniCache).filter((n) => n.startsWith('kueuer-'))) rmSync(join(cniCache, f), { force: true });
  for (const path of record.createdPaths) {
    // Shared with other tools: removed only when nothing of theirs is in it.
    if (path === '/run/netns' || path === '/var/lib/cni') removeEmptyTree(path);
    else rmSync(path, { recursive: true, force: true });
  }
  rmSync(BASE, { recursive: true, force: true });
  rmSync(LOCK_FILE, { force: true });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Runs `fn` while holding a short mutex (an atomic mkdir) around the lock file's check-and-take, so two starts
 * that find a dead owner do not both clean up and both take the machine. A mutex left by a dead process is removed.
 */
async function withLockMutex<T>(fn: () => Promise<T>): Promise<T> {
  const mutex = `${LOCK_FILE}.mutex`;
  for (;;) {
    try {
      mkdirSync(mutex);
      writeFileSync(join(mutex, 'pid'), String(process.pid));
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      let holder = 0;
      try {
        holder = Number(readFileSync(join(mutex, 'pid'), 'utf8'));
      } catch {
        // being written
      }
      if (holder > 0 && !alive(holder)) rmSync(mutex, { recursive: true, force: true });
      await sleep(100);
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(mutex, { recursive: true, force: true });
  }
}

/** Takes the one-cluster lock (waiting up to waitMs for a live owner); cleans up after a previous run that crashed. */
async function takeLock(binDir: string, waitMs: number): Promise<HostRecord> {
  const until = Date.now() + waitMs;
  for (;;) {
    const taken = await withLockMutex(async () => {
      if (existsSync(LOCK_FILE)) {
        const previous = JSON.parse(readFileSync(LOCK_FILE, 'utf8')) as HostRecord;
        if (previous.pid !== process.pid && alive(previous.pid)) return previous.pid;
        await undoHost(previous, binDir);
      } else if (existsSync(BASE) || sh('ip', ['link', 'show', BRIDGE]).code === 0) {
        // Left by a run that crashed before writing its record: undo what can be found.
        await undoHost({ pid: 0, sysctls: {}, createdPaths: [], processMarkers: [BASE] }, binDir);
      }
      const record: HostRecord = {
        pid: process.pid,
        sysctls: Object.fromEntries(HOST_SYSCTLS.map((s) => [s, readSysctl(s)]).filter((e): e is [string, string] => e[1] !== null)),
        createdPaths: HOST_PATHS.filter((p) => !existsSync(p)),
        processMarkers: [BASE],
      };
      writeFileSync(LOCK_FILE, JSON.stringify(record), { flag: 'wx' });
      return record;
    });
    if (typeof taken !== 'number') return taken;
    // Another test file's cluster (files may run in parallel): wait for it to stop.
    if (Date.now() > until) throw new Error(`a real cluster already runs on this machine (process ${taken}, ${LOCK_FILE}); only one at a time`);
    await sleep(1000);
  }
}

/** Undoes what a real cluster left on this machine when its process died without stop() (scripts/dev/cluster.sh down). */
export async function cleanupRealCluster(binDir: string): Promise<void> {
  if (existsSync(LOCK_FILE)) {
    const owner = (JSON.parse(readFileSync(LOCK_FILE, 'utf8')) as HostRecord).pid;
    if (owner !== process.pid && alive(owner)) throw new Error(`the real cluster of process ${owner} still runs; stop that process`);
  }
  await takeLock(binDir, 0);
  await undoHost({ pid: process.pid, sysctls: {}, createdPaths: [], processMarkers: [BASE] }, binDir);
}

const saveRecord = (record: HostRecord) => writeFileSync(LOCK_FILE, JSON.stringify(record));

/** Throws unless the kernel routes `ip` via the harness bridge. */
export function assertRoutedViaBridge(ip: string): void {
  const r = sh('ip', ['route', 'get', ip]);
  if (r.code !== 0 || !new RegExp(`\\bdev ${BRIDGE}\\b`).test(r.stdout)) {
    throw new Error(`network safety: ${ip} is not routed via the harness bridge ${BRIDGE} (ip route get: ${r.stdout.trim()}); refusing to send traffic`);
  }
}

function createBridge(): void {
  const steps: string[][] = [
    ['link', 'add', BRIDGE, 'type', 'bridge'],
    ['addr', 'add', `${BRIDGE_GATEWAY}/${POD_CIDR.split('/')[1]}`, 'dev', BRIDGE],
    ['link', 'set', BRIDGE, 'up'],
    // Service addresses no kube-proxy rule catches die on the bridge instead of leaving by the default route.
    ['route', 'add', SERVICE_CIDR, 'dev', BRIDGE, 'src', BRIDGE_GATEWAY],
  ];
  for (const step of steps) {
    const r = sh('ip', step);
    if (r.code !== 0) throw new Error(`ip ${step.join(' ')} failed: ${r.stdout}`);
  }
}

function writeConfigs(
  podLogsDir: string,
  pauseImage: string,
  ports: { kubeletHealthz: number; proxyHealthz: number; proxyMetrics: number },
  kubeconfig: string,
  clientCa: string,
): void {
  mkdirSync(join(BASE, 'cni', 'net.d'), { recursive: true });
  writeFileSync(
    join(BASE, 'cni', 'net.d', '10-kueuer.conflist'),
    JSON.stringify({
      cniVersion: '0.4.0',
      name: 'kueuer',
      plugins: [
        {
          type: 'bridge',
          bridge: BRIDGE,
          isGateway: true,
          isDefaultGateway: false,
          ipMasq: false,
          hairpinMode: true,
          ipam: {
            type: 'host-local',
            ranges: [[{ subnet: POD_CIDR, gateway: BRIDGE_GATEWAY }]],
            routes: [{ dst: SERVICE_CIDR, gw: BRIDGE_GATEWAY }],
            dataDir: join(BASE, 'cni', 'ipam'),
          },
        },
      ],
    }),
  );
  writeFileSync(
    join(BASE, 'containerd.toml'),
    `version = 2
root = "${BASE}/containerd/root"
state = "${BASE}/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]
[grpc]
  address = "${SOCKET}"
[ttrpc]
  address = "${SOCKET}.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "${BASE}/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${pauseImage}"
  restrict_oom_score_adj = true
  disable_apparmor = true
  enable_selinux = false
  stream_server_address = "127.0.0.1"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "${BASE}/cni/net.d"
`,
  );
  // Pods resolve nothing: no query leaves the machine.
  writeFileSync(join(BASE, 'resolv.conf'), '# no DNS on the test node\noptions ndots:1\n');
  writeFileSync(
    join(BASE, 'kubelet.yaml'),
    `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: ${BRIDGE_GATEWAY}
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: ${ports.kubeletHealthz}
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: ${clientCa}}
authorization: {mode: AlwaysAllow}
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
cgroupsPerQOS: true
enforceNodeAllocatable: [pods]
protectKernelDefaults: false
containerRuntimeEndpoint: unix://${SOCKET}
resolvConf: ${BASE}/resolv.conf
podLogsDir: ${podLogsDir}
podCIDR: ${POD_CIDR}
serializeImagePulls: false
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
nodeStatusUpdateFrequency: 2s
syncFrequency: 10s
shutdownGracePeriod: 0s
`,
  );
  writeFileSync(
    join(BASE, 'kube-proxy.yaml'),
    `apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection: {kubeconfig: ${kubeconfig}}
hostnameOverride: ${NODE_NAME}
clusterCIDR: ${POD_CIDR}
detectLocalMode: ClusterCIDR
healthzBindAddress: 127.0.0.1:${ports.proxyHealthz}
metricsBindAddress: 127.0.0.1:${ports.proxyMetrics}
nodePortAddresses: ["${BRIDGE_GATEWAY}/32"]
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
iptables: {localhostNodePorts: false, syncPeriod: 30s, minSyncPeriod: 0s}
`,
  );
}

/** Starts a process that holds a private mount namespace with the kubelet's sysctls shown as it wants them; resolves its pid. */
async function startMountNamespace(logFile: string): Promise<ChildProcess> {
  mkdirSync(join(BASE, 'sysctl'), { recursive: true });
  const binds = Object.entries(KUBELET_SYSCTLS).map(([name, value]) => {
    const file = join(BASE, 'sysctl', name.replaceAll('/', '.'));
    writeFileSync(file, `${value}\n`);
    return `mount --bind ${file} /proc/sys/${name}`;
  });
  // `exec -a` keeps BASE in its command line: the lock's process marker finds it after a crash.
  const holder = startLogged(
    'unshare',
    [
      '--mount',
      '--propagation',
      'private',
      '--',
      'bash',
      '-c',
      `set -e; ${binds.join('; ')}; echo ready > ${BASE}/mount-namespace.ready; exec -a "kueuer-node-mount-namespace ${BASE}" sleep infinity`,
    ],
    logFile,
  );
  await waitFor(async () => existsSync(join(BASE, 'mount-namespace.ready')), 10_000, 'the node mount namespace', {
    logFile,
    child: holder,
    intervalMs: 200,
    tolerateErrors: true,
  });
  return holder;
}

async function containerdReady(): Promise<boolean> {
  await run('ctr', ['-a', SOCKET, 'version']);
  return true;
}

/** Imports an image archive into the node's containerd (namespace k8s.io, the CRI's). */
async function importArchive(archivePath: string): Promise<void> {
  await run('ctr', ['-a', SOCKET, '-n', 'k8s.io', 'images', 'import', archivePath], { maxBuffer: 16 * 1024 * 1024 });
}

function nodeReady(controlPlane: ControlPlane): boolean {
  const node = controlPlane.tryGetJson('node', NODE_NAME);
  const ready = (node?.status?.conditions ?? []).find((c: { type: string }) => c.type === 'Ready');
  const notReadyTaint = (node?.spec?.taints ?? []).some((t: { key: string }) => t.key === 'node.kubernetes.io/not-ready');
  return ready?.status === 'True' && !notReadyTaint;
}

/**
 * `binDir`: inject('k8sBinDir'); `nodeDir`: inject('nodeDir') (scripts/dev/node.sh's output; run here when absent);
 * `lockWaitMs`: how long to wait for another real cluster on this machine to stop (default 30 min).
 */
export async function startRealCluster(options: { binDir: string; nodeDir?: string; lockWaitMs?: number }): Promise<RealCluster> {
  let started = Date.now();
  const { binDir } = options;
  for (const b of ['kubelet', 'kube-proxy', 'kube-scheduler']) {
    if (!existsSync(join(binDir, b))) throw new Error(`${join(binDir, b)} is missing: scripts/dev/k8s-binaries.sh builds it`);
  }
  if (process.getuid?.() !== 0) throw new Error('the real node needs root (containerd, the kubelet, iptables, the bridge)');
  const nodeDir =
    options.nodeDir ??
    execFileSync('bash', [join(root, 'scripts', 'dev', 'node.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
      .trim()
      .split('\n')
      .pop()!;
  const images = { pause: 'kueuer.local/pause:1', busybox: 'kueuer.local/busybox:1' };
  const crictlBin = join(nodeDir, 'bin', 'crictl');

  const record = await takeLock(binDir, options.lockWaitMs ?? 30 * 60_000);
  started = Date.now();
  let controlPlane: ControlPlane | undefined;
  const stopAll = async () => {
    await undoHost(record, binDir);
    await controlPlane?.stop();
  };
  try {
    rmSync(LOG_DIR, { recursive: true, force: true });
    mkdirSync(LOG_DIR, { recursive: true });
    mkdirSync(BASE, { recursive: true });
    createBridge();
    controlPlane = await startControlPlane(binDir, { serviceCidr: SERVICE_CIDR, forPods: { address: BRIDGE_GATEWAY } });
    record.processMarkers.push(controlPlane.dir);
    saveRecord(record);
    const controlPlaneMs = Date.now() - started;

    const ports = { kubeletHealthz: await freePort(), proxyHealthz: await freePort(), proxyMetrics: await freePort() };
    writeConfigs(join(BASE, 'pod-logs'), images.pause, ports, controlPlane.kubeconfig, join(controlPlane.certs, 'ca.crt'));
    const holder = await startMountNamespace(join(LOG_DIR, 'mount-namespace.log'));
    const inNodeNamespace = (args: string[]) => ['-t', String(holder.pid), '--mount', '--', ...args];

    const containerdLog = join(LOG_DIR, 'containerd.log');
    const containerd = startLogged('nsenter', inNodeNamespace(['containerd', '--config', join(BASE, 'containerd.toml')]), containerdLog);
    await waitFor(containerdReady, 30_000, 'containerd', { logFile: containerdLog, child: containerd, intervalMs: 200, tolerateErrors: true });
    await importArchive(join(nodeDir, 'images', 'current', 'pause.tar'));
    await importArchive(join(nodeDir, 'images', 'current', 'busybox.tar'));

    const kubeletLog = join(LOG_DIR, 'kubelet.log');
    const kubeletStarted = Date.now();
    const kubelet = startLogged(
      'nsenter',
      inNodeNamespace([
        join(binDir, 'kubelet'),
        `--config=${join(BASE, 'kubelet.yaml')}`,
        `--kubeconfig=${controlPlane.kubeconfig}`,
        `--hostname-override=${NODE_NAME}`,
        `--node-ip=${BRIDGE_GATEWAY}`,
        `--root-dir=${join(BASE, 'kubelet')}`,
        `--cert-dir=${join(BASE, 'kubelet', 'pki')}`,
        `--volume-plugin-dir=${join(BASE, 'kubelet', 'volume-plugins')}`,
      ]),
      kubeletLog,
    );
    const cp = controlPlane;
    await waitFor(async () => nodeReady(cp), 60_000, 'the node (kubelet) to be Ready', {
      logFile: kubeletLog,
      child: kubelet,
      intervalMs: 200,
      tolerateErrors: true,
    });
    const nodeReadyMs = Date.now() - kubeletStarted;
    await waitFor(async () => (await get(`http://127.0.0.1:${ports.kubeletHealthz}/healthz`)) === 200, 10_000, 'the kubelet healthz', {
      logFile: kubeletLog,
      child: kubelet,
      intervalMs: 200,
      tolerateErrors: true,
    });

    const proxyLog = join(LOG_DIR, 'kube-proxy.log');
    // The config file is in BASE, so the lock's process marker names kube-proxy too.
    const proxy = startLogged(join(binDir, 'kube-proxy'), [`--config=${join(BASE, 'kube-proxy.yaml')}`], proxyLog);
    await waitFor(async () => (await get(`http://127.0.0.1:${ports.proxyHealthz}/healthz`)) === 200, 30_000, 'kube-proxy', {
      logFile: proxyLog,
      child: proxy,
      intervalMs: 200,
      tolerateErrors: true,
    });

    assertRoutedViaBridge(BRIDGE_GATEWAY.replace(/\.1$/, '.2'));
    assertRoutedViaBridge(SERVICE_CIDR.replace(/0\/24$/, '1'));

    let stopped = false;
    return {
      controlPlane,
      nodeName: NODE_NAME,
      bridgeGateway: BRIDGE_GATEWAY,
      podCidr: POD_CIDR,
      serviceCidr: SERVICE_CIDR,
      images,
      timings: { controlPlaneMs, nodeReadyMs, startMs: Date.now() - started },
      importImage: importArchive,
      assertRoutedViaBridge,
      async crictl(args) {
        const { stdout } = await run(crictlBin, [`--runtime-endpoint=unix://${SOCKET}`, `--image-endpoint=unix://${SOCKET}`, '--timeout=30s', ...args], {
          maxBuffer: 16 * 1024 * 1024,
        });
        return stdout;
      },
      async stop() {
        if (stopped) return;
        stopped = true;
        await stopAll();
      },
    };
  } catch (err) {
    await stopAll().catch(() => undefined);
    throw err;
  }
}
