/**
 * Installs Kueuer on the real single-node cluster (test/helpers/node.ts) the
 * way README tells a user to:
 *
 * 1. the broker Secret `kueuer-backend` in kueuer-system, created with
 *    `kubectl create secret generic … --from-literal=KUEUER_BACKEND=…`
 *    (README, "Install on a cluster", kustomize step 1);
 * 2. a kustomization of the user's own (a temp dir under .cache/real-node/)
 *    that lists the shipped `manifests/base` and sets `images:` to the
 *    locally built image, as README's kustomization example does. No
 *    imagePullPolicy patch is needed: the image's tag is not `latest`, so
 *    Kubernetes defaults the Deployments' and the injected sidecar's policy
 *    to IfNotPresent, and the image is already in containerd. One patch, on
 *    the ConfigMap `kueuer-config` (the place for KUEUER_* settings),
 *    shortens the autoscaler's depth poll to 1 s so the scaling tests wait
 *    less;
 * 3. `scripts/install.sh <that dir>` with KUBECONFIG set to the cluster and
 *    the cluster's kubectl first on PATH.
 *
 * The broker is the test suite's RabbitMQ (127.0.0.1 only). Pods reach it
 * through TCP forwarders in the test process listening on the node bridge's
 * host address (AMQP and the management API the autoscaler reads); the
 * broker then sees loopback clients, so its `guest` user is accepted.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { dirname, join, relative } from 'node:path';
import type { ControlPlane } from './control-plane.js';

const root = join(import.meta.dirname, '..', '..');

/** What of test/helpers/node.ts's RealCluster the install needs. */
export interface ClusterForInstall {
  controlPlane: ControlPlane;
  /** The host's address on the harness bridge, reachable from pods. */
  bridgeGateway: string;
}

export interface TcpForward {
  /** host:port pods connect to. */
  host: string;
  port: number;
  /** Connections accepted so far. */
  connections(): number;
  close(): Promise<void>;
}

/** A TCP forwarder: listens on `listenHost` (any free port) and pipes every connection to `target`. */
export async function forwardTcp(listenHost: string, target: { host: string; port: number }): Promise<TcpForward> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server: Server = createServer((client) => {
    accepted++;
    const upstream = connect({ host: target.host, port: target.port, noDelay: true });
    client.setNoDelay(true);
    sockets.add(client).add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, listenHost, () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('the forwarder has no TCP address');
  return {
    host: listenHost,
    port: address.port,
    connections: () => accepted,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export interface KueuerInstall {
  /** KUEUER_BACKEND as pods see it (through the forwarder). */
  backendUrl: string;
  /** KUEUER_RABBITMQ_MANAGEMENT_URL as pods see it. */
  managementUrl: string;
  /** The user's kustomization directory that was installed. */
  kustomizeDir: string;
  /** Wall time of scripts/install.sh, ms. */
  installMs: number;
  /** install.sh's output. */
  installOutput: string;
  /** The broker Secret in an app namespace, as docs/reference/annotations.md, "Opting in", step 2 says. */
  createBackendSecret(namespace: string): void;
  /** Runs a script of the repository (e.g. scripts/uninstall.sh) as a user would, against this cluster. */
  runScript(script: string, args?: string[]): Promise<ScriptResult>;
  /** Closes the forwarders and removes the kustomization directory (the cluster itself is the caller's). */
  close(): Promise<void>;
}

export interface ScriptResult {
  code: number;
  output: string;
  ms: number;
}

export interface InstallOptions {
  /** The locally built Kueuer image, `name:tag`. */
  image: string;
  /** The suite's RabbitMQ: amqp://user:pass@127.0.0.1:PORT (vitest's inject('amqpUrl')). */
  amqpUrl: string;
  /** Extra keys of the ConfigMap kueuer-config (KUEUER_* settings), patched in by the kustomization. */
  config?: Record<string, string>;
  /** The management APIs pods are to read (one forwarder each); by default scripts/dev/rabbitmq.sh's, on the AMQP port + 3. */
  management?: Array<{ host: string; port: number }>;
}

/** The user's kustomization: the shipped base, the local image, and the ConfigMap settings. */
export function userKustomization(dir: string, image: string, config: Record<string, string>): string {
  const colon = image.lastIndexOf(':');
  const [newName, newTag] = colon > 0 ? [image.slice(0, colon), image.slice(colon + 1)] : [image, 'latest'];
  const ops = Object.entries(config).map(([k, v]) => `      - {op: add, path: /data/${k}, value: ${JSON.stringify(v)}}`);
  return [
    'apiVersion: kustomize.config.k8s.io/v1beta1',
    'kind: Kustomization',
    'resources:',
    `  - ${relative(dir, join(root, 'manifests', 'base'))}`,
    'images:',
    `  - {name: ghcr.io/kueuer/kueuer, newName: ${newName}, newTag: ${JSON.stringify(newTag)}}`,
    ...(ops.length ? ['patches:', '  - target: {kind: ConfigMap, name: kueuer-config}', '    patch: |-', ...ops] : []),
    '',
  ].join('\n');
}

/** Runs `cmd args` from the repository's root without blocking: exit code, stdout+stderr, wall time. */
export function runTool(cmd: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<ScriptResult> {
  const started = Date.now();
  return new Promise((resolve) => {
    execFile(cmd, args, { env, cwd: root, timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, output: `${stdout}${stderr}`, ms: Date.now() - started });
    });
  });
}

/** The suite's RabbitMQ as pods reach it: forwarders on the bridge, and the Secret kueuer-backend they read. */
export interface BrokerForPods {
  /** KUEUER_BACKEND as pods see it (through the forwarder). */
  backendUrl: string;
  /** KUEUER_RABBITMQ_MANAGEMENT_URL as pods see it. */
  managementUrl: string;
  /** The Secret kueuer-backend in `namespace`, made with `kubectl create secret generic` as README says. */
  createBackendSecret(namespace: string): void;
  close(): Promise<void>;
}

export async function brokerForPods(
  cluster: ClusterForInstall,
  amqpUrl: string,
  managementTargets?: Array<{ host: string; port: number }>,
): Promise<BrokerForPods> {
  const cp = cluster.controlPlane;
  const broker = new URL(amqpUrl);
  const amqpPort = Number(broker.port || 5672);
  const amqp = await forwardTcp(cluster.bridgeGateway, { host: broker.hostname, port: amqpPort });
  // scripts/dev/rabbitmq.sh runs the management plugin on the AMQP port + 3.
  const management = await Promise.all(
    (managementTargets ?? [{ host: broker.hostname, port: amqpPort + 3 }]).map((target) => forwardTcp(cluster.bridgeGateway, target)),
  );
  const credentials = `${broker.username}:${broker.password}@`;
  const backendUrl = `amqp://${credentials}${amqp.host}:${amqp.port}`;
  const managementUrl = management.map((m) => `http://${m.host}:${m.port}`).join(',');
  return {
    backendUrl,
    managementUrl,
    createBackendSecret(namespace: string): void {
      const yaml = cp.kubectl([
        '-n',
        namespace,
        'create',
        'secret',
        'generic',
        'kueuer-backend',
        `--from-literal=KUEUER_BACKEND=${backendUrl}`,
        `--from-literal=KUEUER_RABBITMQ_MANAGEMENT_URL=${managementUrl}`,
        '--dry-run=client',
        '-o',
        'yaml',
      ]);
      if (yaml.code !== 0) throw new Error(`kubectl create secret: ${yaml.stderr}`);
      const applied = cp.apply(yaml.stdout);
      if (applied.code !== 0) throw new Error(`the Secret kueuer-backend in ${namespace}: ${applied.stderr}`);
    },
    async close() {
      await amqp.close();
      for (const m of management) await m.close();
    },
  };
}

/** The environment a user's shell has for this cluster: its kubeconfig, its kubectl (and helm, if given) first on PATH. */
export function userEnv(cp: ControlPlane, extra: Record<string, string> = {}, toolDirs: string[] = []): NodeJS.ProcessEnv {
  return { ...process.env, KUBECONFIG: cp.kubeconfig, PATH: [cp.binDir, ...toolDirs, dirname(process.execPath), process.env.PATH ?? ''].join(':'), ...extra };
}

export async function installKueuer(cluster: ClusterForInstall, options: InstallOptions): Promise<KueuerInstall> {
  const cp = cluster.controlPlane;
  const broker = await brokerForPods(cluster, options.amqpUrl, options.management);
  const { backendUrl, managementUrl, createBackendSecret } = broker;

  const cacheDir = join(root, '.cache', 'real-node');
  mkdirSync(cacheDir, { recursive: true });
  const kustomizeDir = mkdtempSync(join(cacheDir, 'install-'));
  writeFileSync(join(kustomizeDir, 'kustomization.yaml'), userKustomization(kustomizeDir, options.image, options.config ?? {}));

  const env = userEnv(cp, { KUEUER_CERT_DIR: join(kustomizeDir, 'certs') });
  const close = async (): Promise<void> => {
    await broker.close();
    rmSync(kustomizeDir, { recursive: true, force: true });
  };

  try {
    // README, kustomize step 1: the namespace, then the broker Secret in it.
    const ns = cp.kubectl(['create', 'namespace', 'kueuer-system']);
    if (ns.code !== 0 && !ns.stderr.includes('AlreadyExists')) throw new Error(`kubectl create namespace kueuer-system: ${ns.stderr}`);
    createBackendSecret('kueuer-system');
    const installed = await runTool('bash', [join(root, 'scripts', 'install.sh'), kustomizeDir], env, 400_000);
    if (installed.code !== 0) {
      const pods = cp.kubectl(['get', 'pods', '-A', '-o', 'wide']).stdout;
      const events = cp.kubectl(['get', 'events', '-n', 'kueuer-system', '--sort-by=.lastTimestamp']).stdout.split('\n').slice(-25).join('\n');
      throw new Error(`scripts/install.sh exited ${installed.code} after ${installed.ms} ms:\n${installed.output}\npods:\n${pods}\nevents:\n${events}`);
    }
    return {
      backendUrl,
      managementUrl,
      kustomizeDir,
      installMs: installed.ms,
      installOutput: installed.output,
      createBackendSecret,
      runScript: (script, args = []) => runTool('bash', [join(root, script), ...args], env, 300_000),
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

/** `kubectl rollout status` without blocking the worker. */
export function rollout(cp: ControlPlane, namespace: string, deployment: string, seconds: number): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(
      join(cp.binDir, 'kubectl'),
      [`--kubeconfig=${cp.kubeconfig}`, '-n', namespace, 'rollout', 'status', `deployment/${deployment}`, `--timeout=${seconds}s`],
      (err, stdout, stderr) => {
        if (!err) return resolve();
        const pods = cp.kubectl(['get', 'pods', '-n', namespace, '-o', 'wide']).stdout;
        const logs = cp.kubectl(['logs', '-n', namespace, `deployment/${deployment}`, '--all-containers', '--tail=30']).stdout;
        reject(new Error(`deployment ${namespace}/${deployment} not rolled out: ${stderr || stdout}\npods:\n${pods}\nlogs:\n${logs}`));
      },
    );
  });
}
