/**
 * A private network namespace for the benchmark: its own loopback, so
 * Knative's queue-proxy can bind its fixed ports (8022, 9090) and the brokers
 * their ports without colliding with anything else on the machine, and every
 * process of every row (app, proxies, brokers, load generators) talks over the
 * same loopback. Needs root (`unshare -n`).
 *
 * The namespace is held by one `sleep` process; every other process enters it
 * with `nsenter -n`, which execs the command, so a child's pid is the
 * command's own pid (its /proc/<pid>/stat is the process measured).
 */
import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { existsSync, readdirSync, readlinkSync } from 'node:fs';

export class Netns {
  private readonly children: ChildProcess[] = [];

  private constructor(private readonly anchor: ChildProcess) {}

  static async create(): Promise<Netns> {
    if (process.getuid?.() !== 0) throw new Error('the benchmark needs root: it runs its processes in a private network namespace (unshare -n)');
    const anchor = spawn('unshare', ['-n', '--', 'sh', '-c', 'ip link set lo up && echo up && exec sleep infinity'], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      anchor.stdout.once('data', () => resolve());
      anchor.once('exit', (code) => reject(new Error(`unshare -n exited with ${code}: the benchmark's network namespace could not be made`)));
    });
    return new Netns(anchor);
  }

  private enter(command: string, args: string[]): [string, string[]] {
    if (this.anchor.pid === undefined || !existsSync(`/proc/${this.anchor.pid}/ns/net`)) throw new Error('the benchmark network namespace is gone');
    return ['nsenter', ['-t', String(this.anchor.pid), '-n', '--', command, ...args]];
  }

  /** Starts a long-running process inside the namespace; it is killed by close(). */
  spawn(command: string, args: string[], options: SpawnOptions = {}): ChildProcess {
    const [cmd, full] = this.enter(command, args);
    const child = spawn(cmd, full, { stdio: ['ignore', 'ignore', 'inherit'], ...options });
    this.children.push(child);
    return child;
  }

  /** Runs a command inside the namespace to its end; returns its stdout. */
  run(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): string {
    const [cmd, full] = this.enter(command, args);
    return execFileSync(cmd, full, { encoding: 'utf8', env, stdio: ['ignore', 'pipe', 'inherit'] });
  }

  /** Kills every process left in the namespace (a broker's epmd daemon too), then the namespace. */
  close(): void {
    const ns = this.anchor.pid === undefined ? undefined : netnsOf(this.anchor.pid);
    for (const c of this.children) if (c.exitCode === null) c.kill('SIGKILL');
    if (ns !== undefined && ns !== netnsOf(process.pid)) {
      for (const entry of readdirSync('/proc')) {
        const pid = Number(entry);
        if (Number.isInteger(pid) && pid !== this.anchor.pid && netnsOf(pid) === ns) process.kill(pid, 'SIGKILL');
      }
    }
    this.anchor.kill('SIGKILL');
  }
}

function netnsOf(pid: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/ns/net`);
  } catch {
    return undefined;
  }
}
