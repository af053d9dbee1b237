/**
 * The images scripts/dev/images.sh builds (docs/images.md), run without a node:
 * each docker-archive unpacked and its entrypoint started by runc as its
 * config says (user, env, working dir). Fails if an archive is misnamed, the
 * Kueuer image cannot start its CLI as uid 65532 or cannot serve, or
 * go-httpbin does not answer.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ImageContainer, unpackDockerArchive, type UnpackedImage } from '../helpers/image-run.js';
import { buildImagesAsync, type ImagesJson } from '../helpers/images.js';
import { request } from '../helpers/http.js';
import { freePort } from '../helpers/net.js';

const pkg = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'package.json'), 'utf8')) as { version: string };

/** Polls url until it answers 200, failing early with the container's output if it exits. */
async function until200(base: string, path: string, container: ImageContainer, timeoutMs = 20_000): Promise<void> {
  const url = base + path;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (container.process?.exitCode !== null && container.process?.exitCode !== undefined) {
      throw new Error(`${container.id} exited ${container.process.exitCode} before ${url} answered:\n${container.stdout}\n${container.stderr}`);
    }
    const res = await request(base, { path }).catch(() => undefined);
    if (res?.status === 200) return;
    if (Date.now() > deadline) throw new Error(`${url} did not answer 200 in ${timeoutMs} ms:\n${container.stdout}\n${container.stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The real and effective uids of a host process, from /proc. */
const uidsOf = (pid: number): string =>
  /^Uid:\s+(.*)$/m
    .exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]
    ?.split(/\s+/)
    .slice(0, 2)
    .join(' ') ?? '';

describe('images built here (scripts/dev/images.sh), run by runc without a node', () => {
  let images: ImagesJson;
  let dir: string;
  let kueuer: UnpackedImage;
  let httpbin: UnpackedImage;
  let httpbinPort: number;
  const containers: ImageContainer[] = [];
  const container = (image: UnpackedImage, opts: ConstructorParameters<typeof ImageContainer>[2]) => {
    const c = new ImageContainer(image, dir, opts);
    containers.push(c);
    return c;
  };

  beforeAll(async () => {
    // Warm: about a second. Cold: debootstrap, Node, npm ci, tsc (several minutes).
    images = await buildImagesAsync();
    dir = mkdtempSync(join(tmpdir(), 'kueuer-images-'));
    kueuer = unpackDockerArchive(images.kueuer.archive, join(dir, 'kueuer'));
    httpbin = unpackDockerArchive(images.httpbin.archive, join(dir, 'httpbin'));
  }, 30 * 60_000);

  afterAll(() => {
    for (const c of containers) c.remove();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('names each archive with the ref it reports, which ctr images import tags it as', () => {
    expect(images.kueuer.ref).toBe('localhost/kueuer:dev');
    expect(images.httpbin.ref).toBe('localhost/go-httpbin:dev');
    expect(kueuer.repoTags).toEqual([images.kueuer.ref]);
    expect(httpbin.repoTags).toEqual([images.httpbin.ref]);
  });

  it('Kueuer: the entrypoint (tini, node) runs as uid 65532 and prints the package version', async () => {
    expect(kueuer.config.User).toBe('65532:65532');
    expect(kueuer.config.Entrypoint).toEqual(['/usr/bin/tini', '--', 'node', '/app/bin/kueuer.js']);
    const run = await container(kueuer, { args: ['--version'] }).runToEnd();
    expect(run, run.stderr).toMatchObject({ code: 0 });
    expect(run.stdout.trim()).toBe(`kueuer ${pkg.version}`);
  });

  it('Kueuer: the base is the Node the project targets (the node devDependency), with NODE_ENV=production', async () => {
    const lock = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { version: string }>;
    };
    expect(kueuer.config.Env).toContain('NODE_ENV=production');
    const node = await container({ ...kueuer, config: { ...kueuer.config, Entrypoint: ['node'] } }, { args: ['--version'] }).runToEnd();
    expect(node, node.stderr).toMatchObject({ code: 0 });
    expect(node.stdout.trim()).toBe(`v${lock.packages['node_modules/node']!.version}`);
  });

  it('go-httpbin (static, FROM scratch) answers /get on the port PORT names, as uid 65532', async () => {
    expect(httpbin.config.Entrypoint).toEqual(['/go-httpbin']);
    httpbinPort = await freePort();
    const app = container(httpbin, { env: { PORT: String(httpbinPort) } });
    app.start();
    await until200(`http://127.0.0.1:${httpbinPort}`, '/get', app);
    expect(uidsOf(app.initPid())).toBe('65532 65532');
    const res = await request(`http://127.0.0.1:${httpbinPort}`, {
      path: '/get?probe=1',
      headers: { 'x-probe': 'images' },
    });
    expect(res.status).toBe(200);
    const body = JSON.parse(res.body.toString()) as { args: Record<string, string[]>; headers: Record<string, string[]>; url: string };
    expect(body.args).toEqual({ probe: ['1'] });
    expect(body.headers['X-Probe']).toEqual(['images']);
  });

  it('Kueuer: `kueuer local` from the image queues a request to the go-httpbin container and returns its answer; SIGTERM through tini stops it', async () => {
    expect(httpbinPort, 'the go-httpbin container of the previous test').toBeGreaterThan(0);
    const [listen, admin] = [await freePort(), await freePort()];
    const local = container(kueuer, {
      args: ['local', '--listen', `127.0.0.1:${listen}`, '--admin-listen', `127.0.0.1:${admin}`, '--app', `127.0.0.1:${httpbinPort}`],
    });
    local.start();
    await until200(`http://127.0.0.1:${listen}`, '/get', local);
    expect(uidsOf(local.initPid())).toBe('65532 65532');
    const res = await request(`http://127.0.0.1:${listen}`, {
      path: '/anything/queued?n=7',
      method: 'POST',
      body: 'through the queue',
      headers: { 'content-type': 'text/plain' },
    });
    expect(res.status).toBe(200);
    const body = JSON.parse(res.body.toString()) as { method: string; args: Record<string, string[]>; data: string };
    expect(body).toMatchObject({ method: 'POST', args: { n: ['7'] }, data: 'through the queue' });
    local.kill('TERM');
    const started = Date.now();
    const code = await local.exited();
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(code, local.stderr).toBe(0);
  });
});
