/**
 * The container images scripts/dev/images.sh builds from the project's own files
 * (docs/images.md): the Kueuer image from the shipped Dockerfile on a local
 * Node 24 base, go-httpbin from scratch, and the scenario runner's two plain
 * apps (test/scenario-apps/) on the Node base. Each is a docker-archive that
 * `ctr -n k8s.io images import <archive>` names `ref`.
 */
import { execFile, execFileSync } from 'node:child_process';
import { isAbsolute, join } from 'node:path';

export interface ImageArchive {
  /** Absolute path of the docker-archive tarball. */
  archive: string;
  /** The name the archive carries, e.g. localhost/kueuer:dev. */
  ref: string;
}

export interface ImagesJson {
  kueuer: ImageArchive;
  httpbin: ImageArchive;
  /** test/scenario-apps/*.mjs in /app/, entrypoint `node` (scripts/scenario/, test/node/scenario-short.test.ts). */
  scenarioApps: ImageArchive;
}

const script = join(import.meta.dirname, '..', '..', 'scripts', 'dev', 'images.sh');

function imageArchive(value: unknown, name: string): ImageArchive {
  const v = value as Partial<ImageArchive> | undefined;
  if (typeof v?.archive !== 'string' || !isAbsolute(v.archive) || !v.archive.endsWith('.tar')) {
    throw new Error(`scripts/dev/images.sh: ${name}.archive is not an absolute .tar path: ${JSON.stringify(v?.archive)}`);
  }
  if (typeof v.ref !== 'string' || !/^localhost\/[a-z0-9._/-]+:[\w.-]+$/.test(v.ref)) {
    throw new Error(`scripts/dev/images.sh: ${name}.ref is not a localhost/NAME:TAG reference: ${JSON.stringify(v.ref)}`);
  }
  return { archive: v.archive, ref: v.ref };
}

/** Reads the JSON object scripts/dev/images.sh prints on its last line (its output contract). */
export function parseImagesJson(stdout: string): ImagesJson {
  const last = stdout.trim().split('\n').pop() ?? '';
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(last) as Record<string, unknown>;
  } catch {
    throw new Error(`scripts/dev/images.sh printed no JSON on its last line:\n${stdout}`);
  }
  return {
    kueuer: imageArchive(parsed.kueuer, 'kueuer'),
    httpbin: imageArchive(parsed.httpbin, 'httpbin'),
    scenarioApps: imageArchive(parsed.scenarioApps, 'scenarioApps'),
  };
}

/**
 * Builds (or finds in .cache/images/) the images and returns their archives.
 * Synchronous, for test/global-setup.ts: a warm cache answers in about a
 * second, a cold machine takes several minutes (see scripts/dev/images.sh). Needs
 * root. Throws with the script's exit status when a build fails; its progress
 * goes to this process's stderr.
 */
export function buildImages(): ImagesJson {
  const stdout = execFileSync('bash', [script], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 16 * 1024 * 1024 });
  return parseImagesJson(stdout);
}

/**
 * Runs a build script that prints its result as JSON on its last line, without blocking the worker's
 * event loop (a cold build takes minutes); its progress goes to this process's stderr.
 */
export function runJsonScript<T>(path: string, parse: (stdout: string) => T, timeoutMs = 30 * 60_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = execFile('bash', [path], { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024, timeout: timeoutMs }, (err, stdout) => {
      if (err) reject(err);
      else {
        try {
          resolve(parse(stdout));
        } catch (e) {
          reject(e as Error);
        }
      }
    });
    child.stderr?.pipe(process.stderr);
  });
}

/** buildImages for a test file: the same build, without blocking the worker's event loop. */
export function buildImagesAsync(): Promise<ImagesJson> {
  return runJsonScript(script, parseImagesJson);
}
