/**
 * The real single-node cluster (test/helpers/node.ts) on this machine: the
 * node becomes Ready, a pod of a locally built image runs behind the locally
 * built sandbox image, its Service's ClusterIP answers from the host through
 * kube-proxy, pods get only the harness's routes, and stop() leaves nothing
 * behind on the host. Prints the node Ready, pod Ready and whole-cycle times.
 */
import { execFileSync, spawn } from 'node:child_process';
import http from 'node:http';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { LOCK_FILE, nodeLeftovers, processesMarked, startRealCluster, type RealCluster } from '../helpers/node.js';

const NS = 'smoke';
const root = join(import.meta.dirname, '..', '..');
/** How long a start waits for another test file's real cluster to stop (test files may run in parallel). */
const LOCK_WAIT_MS = 30 * 60_000;
const cycleStarted = Date.now();

function httpGet(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { timeout: 2000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`timeout: ${url}`)));
    req.on('error', reject);
  });
}

async function eventually<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined> | T | undefined): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > until) throw new Error(`${what}: not within ${timeoutMs} ms${last ? ` (${String(last)})` : ''}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe('a real node on this machine', () => {
  let cluster: RealCluster | undefined;
  let podIp = '';
  /** The host's sysctls before this cluster changed them, as its lock file recorded them. */
  let sysctlsBefore: Record<string, string> = {};

  beforeAll(async () => {
    cluster = await startRealCluster({ binDir: inject('k8sBinDir'), nodeDir: inject('nodeDir'), lockWaitMs: LOCK_WAIT_MS });
    sysctlsBefore = (JSON.parse(readFileSync(LOCK_FILE, 'utf8')) as { sysctls: Record<string, string> }).sysctls;
    console.log(
      `real node: control plane ${cluster.timings.controlPlaneMs} ms, node Ready ${cluster.timings.nodeReadyMs} ms after kubelet start, whole start ${cluster.timings.startMs} ms`,
    );
  }, LOCK_WAIT_MS + 600_000);
  afterAll(async () => {
    await cluster?.stop();
  }, 120_000);

  it('runs a pod of a locally built image, behind the locally built sandbox, to Ready', async () => {
    const c = cluster!;
    const node = c.controlPlane.getJson('node', c.nodeName);
    expect(node.status.addresses).toContainEqual({ type: 'InternalIP', address: c.bridgeGateway });
    expect(c.controlPlane.apply(`apiVersion: v1\nkind: Namespace\nmetadata: {name: ${NS}}\n`).code).toBe(0);
    const applied = Date.now();
    const pod = c.controlPlane.apply(`apiVersion: v1
kind: Pod
metadata: {name: web, namespace: ${NS}, labels: {app: web}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: ${c.images.busybox}
    imagePullPolicy: Never
    command: [sh, -c, 'echo hello from the real node > /tmp/index.html && exec httpd -f -p 8080 -h /tmp']
    ports: [{containerPort: 8080}]
    readinessProbe: {httpGet: {path: /index.html, port: 8080}, periodSeconds: 1}
`);
    expect(pod.stderr).toBe('');
    const ready = await eventually('pod web Ready', 60_000, () => {
      const p = c.controlPlane.tryGetJson('pod', 'web', '-n', NS);
      return p?.status?.conditions?.some((x: { type: string; status: string }) => x.type === 'Ready' && x.status === 'True') ? p : undefined;
    });
    console.log(`real node: pod Ready ${Date.now() - applied} ms after apply`);
    podIp = ready.status.podIP as string;
    expect(podIp).toMatch(/^10\.244\.77\.\d+$/);
    expect(ready.spec.nodeName).toBe(c.nodeName);
    // The pod's sandbox is the image built here, and the pod got a ServiceAccount token (root CA publisher, token controller).
    const sandboxes = JSON.parse(await c.crictl(['pods', '--namespace', NS, '-o', 'json'])) as { items: Array<{ id: string }> };
    expect(sandboxes.items).toHaveLength(1);
    const containerId = (await c.crictl(['ps', '-q', '--pod', sandboxes.items[0]!.id])).trim();
    expect(containerId).toMatch(/^[0-9a-f]+$/);
    const token = await c.crictl(['exec', containerId, 'cat', '/var/run/secrets/kubernetes.io/serviceaccount/namespace']);
    expect(token).toBe(NS);
    // Inside the pod: the pod range and the Service range via the bridge gateway, and no default route.
    const routes = await c.crictl(['exec', containerId, 'ip', 'route']);
    expect(routes).toContain(`10.96.77.0/24 via ${c.bridgeGateway}`);
    expect(routes).toContain('10.244.77.0/24 dev eth0');
    expect(routes).not.toMatch(/^default/m);
    const images = await c.crictl(['images', '-o', 'json']);
    expect(images).toContain('kueuer.local/pause:1');
  }, 120_000);

  it('answers on a Service ClusterIP from the host and from a pod, through kube-proxy; pods reach the apiserver', async () => {
    const c = cluster!;
    const svc = c.controlPlane.apply(`apiVersion: v1
kind: Service
metadata: {name: web, namespace: ${NS}}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
`);
    expect(svc.stderr).toBe('');
    const clusterIp = c.controlPlane.getJson('service', 'web', '-n', NS).spec.clusterIP as string;
    expect(clusterIp).toMatch(/^10\.96\.77\.\d+$/);
    c.assertRoutedViaBridge(clusterIp);
    c.assertRoutedViaBridge(podIp);
    const answer = await eventually('the ClusterIP to answer', 30_000, async () => {
      const r = await httpGet(`http://${clusterIp}/index.html`);
      return r.status === 200 ? r : undefined;
    });
    expect(answer.body).toBe('hello from the real node\n');
    // The answer came through kube-proxy's DNAT: its rules name the Service.
    expect(execFileSync('iptables-save', ['-t', 'nat'], { encoding: 'utf8' })).toContain(`${NS}/web cluster IP`);
    // From inside a pod: its own Service (hairpin through kube-proxy) and the apiserver through the `kubernetes` Service.
    const sandbox = (JSON.parse(await c.crictl(['pods', '--namespace', NS, '-o', 'json'])) as { items: Array<{ id: string }> }).items[0]!;
    const web = (await c.crictl(['ps', '-q', '--pod', sandbox.id])).trim();
    const viaService = await c.crictl(['exec', web, 'sh', '-c', `printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc -w 3 ${clusterIp} 80`]);
    expect(viaService).toContain('hello from the real node');
    const apiserver = await c.crictl(['exec', web, 'sh', '-c', 'nc -w 3 "$KUBERNETES_SERVICE_HOST" "$KUBERNETES_SERVICE_PORT" </dev/null && echo connected']);
    expect(apiserver.trim()).toBe('connected');
    // A ClusterIP no Service owns goes to the bridge (and dies there), not out by the default route.
    c.assertRoutedViaBridge('10.96.77.250');
  }, 60_000);

  it('stop() removes the bridge, routes, kube-proxy and kubelet rules, cgroups, state, and restores sysctls', async () => {
    const c = cluster!;
    cluster = undefined;
    await c.stop();
    console.log(`real node: whole cycle ${Date.now() - cycleStarted} ms`);
    expect(nodeLeftovers()).toEqual([]);
    expect(Object.keys(sysctlsBefore)).toContain('net/ipv4/ip_forward');
    for (const [name, value] of Object.entries(sysctlsBefore)) expect(`${name}=${readFileSync(`/proc/sys/${name}`, 'utf8').trim()}`).toBe(`${name}=${value}`);
  }, 120_000);
});

describe('a real node after a run that crashed', () => {
  it(
    'the next start kills what the dead run left running and cleans its host state first',
    async () => {
      // `npm run cluster -- up` in its own process, killed with SIGKILL once it is up: nothing of it is stopped.
      // It waits for another test file's real cluster to stop (one at a time on the machine).
      const child = spawn('npx', ['vite-node', join(root, 'test', 'helpers', 'cluster-cli.ts'), 'up'], {
        cwd: root,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, KUEUER_NODE_LOCK_WAIT_MS: String(LOCK_WAIT_MS) },
      });
      let output = '';
      child.stdout.on('data', (d: Buffer) => (output += d.toString()));
      child.stderr.on('data', (d: Buffer) => (output += d.toString()));
      await eventually('npm run cluster -- up to be up', LOCK_WAIT_MS + 300_000, () =>
        output.includes('up; Ctrl-C') ? true : child.exitCode === null ? undefined : Promise.reject(new Error(output)),
      );
      // A pod runs on it when it dies: its container processes and shim are left too.
      const kubectl = (...args: string[]) =>
        execFileSync(join(inject('k8sBinDir'), 'kubectl'), [`--kubeconfig=${join(root, '.cache', 'node', 'kubeconfig')}`, ...args], { encoding: 'utf8' });
      kubectl('run', 'sleeper', '--image=kueuer.local/busybox:1', '--image-pull-policy=Never', '--restart=Never', '--', 'sleep', '3600');
      kubectl('wait', '--for=condition=Ready', 'pod/sleeper', '--timeout=60s');
      const podProcesses = execFileSync('sh', ['-c', 'cat $(find /sys/fs/cgroup/pids/kubepods -name cgroup.procs)'], { encoding: 'utf8' })
        .split('\n')
        .filter(Boolean)
        .map(Number);
      expect(podProcesses.length).toBeGreaterThanOrEqual(2); // the sandbox and sleep
      const crashed = JSON.parse(readFileSync(LOCK_FILE, 'utf8')) as { pid: number; processMarkers: string[] };
      const leftRunning = crashed.processMarkers.length;
      expect(leftRunning).toBe(2); // the node's directory and the control plane's
      process.kill(crashed.pid, 'SIGKILL');
      await eventually('the crashed process to be gone', 10_000, () => (child.exitCode !== null || child.signalCode !== null ? true : undefined));
      const orphans = processesMarked(crashed.processMarkers);
      // containerd, its shim, kubelet, kube-proxy, the mount namespace, etcd, the apiserver, the controller manager, the
      // scheduler: each dies when it next writes a log line to its dead parent's pipe, or lives on; some are left now.
      expect(orphans.length).toBeGreaterThan(0);
      expect(nodeLeftovers()).not.toEqual([]);

      const cluster = await startRealCluster({ binDir: inject('k8sBinDir'), nodeDir: inject('nodeDir'), lockWaitMs: LOCK_WAIT_MS });
      try {
        expect(orphans.filter((pid) => existsSync(`/proc/${pid}`))).toEqual([]);
        expect(podProcesses.filter((pid) => existsSync(`/proc/${pid}`))).toEqual([]);
        expect(existsSync(crashed.processMarkers[1]!)).toBe(false);
        expect(cluster.controlPlane.getJson('node', cluster.nodeName).metadata.name).toBe(cluster.nodeName);
      } finally {
        await cluster.stop();
      }
      expect(nodeLeftovers()).toEqual([]);
    },
    LOCK_WAIT_MS + 600_000,
  );
});
