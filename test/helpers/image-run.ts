/**
 * Runs a container image without a node, the way a kubelet's runtime would:
 * the docker-archive's layers unpacked into a rootfs (whiteouts applied), its
 * config's Entrypoint/Cmd/Env/User/WorkingDir turned into an OCI runtime spec,
 * and `runc` (Debian's, which containerd uses) running it. The container
 * shares the host's network namespace, so a server in it listens on loopback.
 * Needs root and runc (scripts/dev/images.sh installs it).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';

/** The fields of an image config (docker-archive's Config JSON, `.config`) a runtime uses. */
export interface ImageConfig {
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  Env?: string[] | null;
  User?: string;
  WorkingDir?: string;
}

export interface UnpackedImage {
  rootfs: string;
  config: ImageConfig;
  /** The names the archive gives the image (what `ctr images import` tags). */
  repoTags: string[];
}

interface ArchiveManifestEntry {
  Config: string;
  RepoTags: string[] | null;
  Layers: string[];
}

/** Paths of a layer tarball's entries, without a leading ./ */
function layerEntries(layerTar: string): string[] {
  const out = execFileSync('tar', ['-tf', layerTar], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  return out
    .split('\n')
    .filter(Boolean)
    .map((p) => p.replace(/^\.\//, '').replace(/\/$/, ''));
}

/** Removes from rootfs what a layer's whiteouts (.wh.NAME, .wh..wh..opq) hide in the layers below it. */
function applyWhiteouts(rootfs: string, entries: string[]): void {
  for (const entry of entries) {
    const name = entry.split('/').pop() ?? '';
    if (!name.startsWith('.wh.')) continue;
    const dir = join(rootfs, normalize(dirname(entry)));
    if (!dir.startsWith(rootfs)) throw new Error(`layer entry escapes the rootfs: ${entry}`);
    if (name === '.wh..wh..opq') {
      for (const child of readdirSync(dir, { withFileTypes: true }).map((d) => d.name)) rmSync(join(dir, child), { recursive: true, force: true });
    } else rmSync(join(dir, name.slice('.wh.'.length)), { recursive: true, force: true });
  }
}

/** Unpacks a docker-archive (one image) into dir/rootfs, returning its config and names. */
export function unpackDockerArchive(archive: string, dir: string): UnpackedImage {
  // One pass over the archive; each layer is then read from its own file.
  const members = join(dir, 'archive');
  mkdirSync(members, { recursive: true });
  execFileSync('tar', ['-xf', archive, '-C', members]);
  const manifest = JSON.parse(readFileSync(join(members, 'manifest.json'), 'utf8')) as ArchiveManifestEntry[];
  if (manifest.length !== 1) throw new Error(`${archive}: expected one image, found ${manifest.length}`);
  const image = manifest[0]!;
  const config = (JSON.parse(readFileSync(join(members, image.Config), 'utf8')) as { config?: ImageConfig }).config ?? {};
  const rootfs = join(dir, 'rootfs');
  mkdirSync(rootfs, { recursive: true });
  for (const layer of image.Layers) {
    const layerTar = join(members, layer);
    applyWhiteouts(rootfs, layerEntries(layerTar));
    execFileSync('tar', ['-xf', layerTar, '--numeric-owner', '-p', '--exclude=.wh.*', '-C', rootfs], { stdio: ['ignore', 'ignore', 'inherit'] });
  }
  rmSync(members, { recursive: true, force: true });
  return { rootfs, config, repoTags: image.RepoTags ?? [] };
}

/** "UID:GID" or "UID" (numeric only: the rootfs's /etc/passwd is not consulted). */
function numericUser(user: string | undefined): { uid: number; gid: number } {
  if (!user) return { uid: 0, gid: 0 };
  const m = /^(\d+)(?::(\d+))?$/.exec(user);
  if (!m) throw new Error(`image User ${JSON.stringify(user)} is not numeric UID[:GID]`);
  return { uid: Number(m[1]), gid: Number(m[2] ?? m[1]) };
}

export interface RunOptions {
  /** Replaces the image's Cmd (as `args:` in a pod does). */
  args?: string[];
  /** Added to (and overriding) the image's Env. */
  env?: Record<string, string>;
}

/** The process an image's config and a pod-like override describe. */
export function containerProcess(config: ImageConfig, opts: RunOptions = {}) {
  const env = new Map<string, string>();
  for (const kv of config.Env ?? []) env.set(kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1));
  for (const [k, v] of Object.entries(opts.env ?? {})) env.set(k, v);
  return {
    args: [...(config.Entrypoint ?? []), ...(opts.args ?? config.Cmd ?? [])],
    env: [...env].map(([k, v]) => `${k}=${v}`),
    cwd: config.WorkingDir || '/',
    user: numericUser(config.User),
  };
}

/** An OCI runtime spec from `runc spec`, pointed at the image, in the host's network namespace. */
function writeBundle(bundle: string, image: UnpackedImage, opts: RunOptions): void {
  rmSync(join(bundle, 'config.json'), { force: true });
  execFileSync('runc', ['spec', '--bundle', bundle]);
  const spec = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8')) as {
    root: { path: string; readonly: boolean };
    process: Record<string, unknown>;
    mounts: Array<{ destination: string; type?: string; source?: string; options?: string[] }>;
    linux: { namespaces: Array<{ type: string }> };
  };
  const proc = containerProcess(image.config, opts);
  spec.root = { path: image.rootfs, readonly: false };
  spec.process = { ...spec.process, terminal: false, args: proc.args, env: proc.env, cwd: proc.cwd, user: proc.user };
  spec.linux.namespaces = spec.linux.namespaces.filter((n) => n.type !== 'network');
  // sysfs cannot be mounted fresh outside a network namespace of one's own: bind the host's, read-only.
  spec.mounts = spec.mounts.map((m) =>
    m.destination === '/sys' ? { destination: '/sys', type: 'none', source: '/sys', options: ['rbind', 'nosuid', 'noexec', 'nodev', 'ro'] } : m,
  );
  spec.mounts = spec.mounts.filter((m) => m.destination !== '/sys/fs/cgroup');
  writeFileSync(join(bundle, 'config.json'), JSON.stringify(spec, null, 2));
}

let seq = 0;

/** One container: its own bundle and runc state directory under `dir`. */
export class ImageContainer {
  readonly id = `kueuer-images-${process.pid}-${++seq}`;
  private readonly stateRoot: string;
  private readonly bundle: string;
  process?: ChildProcess;
  stdout = '';
  stderr = '';

  constructor(
    private readonly image: UnpackedImage,
    dir: string,
    private readonly opts: RunOptions = {},
  ) {
    this.stateRoot = join(dir, `runc-${this.id}`);
    this.bundle = join(dir, `bundle-${this.id}`);
    mkdirSync(this.stateRoot, { recursive: true });
    mkdirSync(this.bundle, { recursive: true });
    writeBundle(this.bundle, image, opts);
  }

  /** Runs to completion (bounded by timeoutMs), returning its exit status and output. */
  runToEnd(timeoutMs = 30_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const child = this.start();
    const timer = setTimeout(() => this.kill('KILL'), timeoutMs);
    return new Promise((resolve) => {
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code, stdout: this.stdout, stderr: this.stderr });
      });
    });
  }

  /** Starts it in the foreground of a `runc run` child (stdio piped). */
  start(): ChildProcess {
    const child = spawn('runc', ['--root', this.stateRoot, 'run', '--bundle', this.bundle, this.id], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', (b: Buffer) => (this.stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (this.stderr += b.toString()));
    this.process = child;
    return child;
  }

  /** Sends a signal to the container's PID 1 (what the kubelet does on delete). */
  kill(signal: 'TERM' | 'KILL'): void {
    try {
      execFileSync('runc', ['--root', this.stateRoot, 'kill', this.id, signal], { stdio: 'ignore' });
    } catch {
      // Already stopped.
    }
  }

  /** The host pid of the container's PID 1, from `runc state`. */
  initPid(): number {
    const state = JSON.parse(execFileSync('runc', ['--root', this.stateRoot, 'state', this.id], { encoding: 'utf8' })) as { pid: number };
    return state.pid;
  }

  /** Resolves with the exit code once `runc run` returns. */
  exited(): Promise<number | null> {
    const child = this.process;
    if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child?.exitCode ?? null);
    return new Promise((resolve) => child.on('close', (code) => resolve(code)));
  }

  /** Kills whatever still runs and removes runc's state (cgroups included). */
  remove(): void {
    this.kill('KILL');
    try {
      execFileSync('runc', ['--root', this.stateRoot, 'delete', '--force', this.id], { stdio: 'ignore' });
    } catch {
      // Never created, or already deleted.
    }
  }
}
