/**
 * `npm run cluster -- up|down` (scripts/dev/cluster.sh runs this with vite-node):
 * the real single-node cluster of the tests (node.ts), for a developer.
 *   up    starts it, prints the KUBECONFIG path (also copied to .cache/node/kubeconfig)
 *         and stays up until Ctrl-C, SIGTERM or `down`; then tears everything down.
 *         KUEUER_CLUSTER_AFTER_UP: a command run once it is up, with KUBECONFIG set
 *         (the hook for installing Kueuer, e.g. scripts/install.sh).
 *   down  stops the cluster `up` started (signals its process and waits), or cleans up
 *         after one that died.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cleanupRealCluster, LOCK_FILE, LOG_DIR, startRealCluster } from './node.js';

const root = join(import.meta.dirname, '..', '..');

function binDir(): string {
  const out = execFileSync('bash', [join(root, 'scripts', 'dev', 'k8s-binaries.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  return out.trim().split('\n').pop() ?? '';
}

async function up(): Promise<void> {
  // Another real cluster on this machine: fail at once, unless KUEUER_NODE_LOCK_WAIT_MS says how long to wait for it.
  const cluster = await startRealCluster({ binDir: binDir(), lockWaitMs: Number(process.env.KUEUER_NODE_LOCK_WAIT_MS ?? 0) });
  const kubeconfig = join(root, '.cache', 'node', 'kubeconfig');
  copyFileSync(cluster.controlPlane.kubeconfig, kubeconfig);
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    console.log('stopping the cluster and cleaning up the host…');
    await cluster.stop();
    console.log('stopped; the host is clean');
    process.exit(0);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
  console.log(
    [
      `node ${cluster.nodeName} Ready (control plane ${cluster.timings.controlPlaneMs} ms, node ${cluster.timings.nodeReadyMs} ms, all ${cluster.timings.startMs} ms)`,
      `pods ${cluster.podCidr}, Services ${cluster.serviceCidr}, host on the bridge: ${cluster.bridgeGateway}`,
      `images: import with ctr -a /var/lib/kueuer-node/containerd.sock -n k8s.io images import X.tar (imagePullPolicy: Never)`,
      `logs: ${LOG_DIR} and ${cluster.controlPlane.dir}`,
      `export KUBECONFIG=${kubeconfig}`,
    ].join('\n'),
  );
  const hook = process.env.KUEUER_CLUSTER_AFTER_UP;
  if (hook) {
    const r = spawnSync('bash', ['-c', hook], { stdio: 'inherit', env: { ...process.env, KUBECONFIG: kubeconfig } });
    if (r.status !== 0) console.error(`KUEUER_CLUSTER_AFTER_UP exited ${r.status}; the cluster stays up`);
  }
  console.log('up; Ctrl-C or `npm run cluster -- down` stops it');
  setInterval(() => undefined, 1 << 30);
}

async function down(): Promise<void> {
  if (existsSync(LOCK_FILE)) {
    const pid = (JSON.parse(readFileSync(LOCK_FILE, 'utf8')) as { pid: number }).pid;
    try {
      process.kill(pid, 'SIGTERM');
      console.log(`asked process ${pid} to stop its cluster`);
      const until = Date.now() + 120_000;
      while (existsSync(LOCK_FILE) && Date.now() < until) await new Promise((r) => setTimeout(r, 500));
    } catch {
      // its process is gone: clean up below
    }
  }
  await cleanupRealCluster(binDir());
  console.log('the host is clean');
}

const command = process.argv[2];
if (command === 'up') await up();
else if (command === 'down') await down();
else {
  console.error('usage: npm run cluster -- up|down');
  process.exit(2);
}
