/**
 * No Docker engine runs here, so the Dockerfile is checked as text: the
 * rules a linter such as hadolint would apply that matter for this image,
 * plus that everything it copies exists.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..');
const lines = readFileSync(join(root, 'Dockerfile'), 'utf8')
  .replace(/\\\n/g, ' ')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'));
const stages: string[][] = [];
/** ARGs declared before the first FROM: the only ones a FROM line may use. */
const globalArgs = new Map<string, string>();
for (const line of lines) {
  const arg = /^ARG (\w+)=(\S+)$/.exec(line);
  if (arg && stages.length === 0) globalArgs.set(arg[1]!, arg[2]!);
  if (line.startsWith('FROM ')) stages.push([]);
  stages.at(-1)?.push(line);
}
const runtime = stages.at(-1)!;

describe('Dockerfile', () => {
  it('is multi-stage on a pinned slim Node 24 (active LTS) base by default', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    for (const s of stages) {
      const from = /^FROM (\S+)( AS \w+)?$/.exec(s[0]!);
      expect(from, s[0]).not.toBeNull();
      const base = from![1]!.replace(/^\$\{(\w+)\}$/, (_, name: string) => globalArgs.get(name) ?? `unset ${name}`);
      expect(base).toMatch(/^node:24-[a-z]+-slim$/);
    }
  });

  it('takes its base from the NODE_IMAGE build argument in every stage (scripts/dev/images.sh passes a local base)', () => {
    expect(globalArgs.get('NODE_IMAGE')).toBe('node:24-bookworm-slim');
    for (const s of stages) expect(s[0]).toMatch(/^FROM \$\{NODE_IMAGE\}( AS \w+)?$/);
  });

  it('runs as a non-root numeric user under an init for signals', () => {
    const user = runtime.filter((l) => l.startsWith('USER ')).at(-1);
    expect(user).toMatch(/^USER [1-9]\d*:[1-9]\d*$/);
    expect(runtime.find((l) => l.startsWith('ENTRYPOINT'))).toMatch(/^ENTRYPOINT \["\/usr\/bin\/tini", "--", "node", "\/app\/bin\/kueuer\.js"\]$/);
    expect(runtime.some((l) => /apt-get install -y --no-install-recommends tini=/.test(l) && /rm -rf \/var\/lib\/apt\/lists/.test(l))).toBe(true);
  });

  it('ships no dev dependencies', () => {
    expect(runtime.filter((l) => /npm (ci|install)/.test(l)).every((l) => l.includes('--omit=dev'))).toBe(true);
    expect(runtime.some((l) => l.includes('npm ci --omit=dev'))).toBe(true);
  });

  it('copies only files that exist, and nothing with ADD', () => {
    expect(lines.some((l) => l.startsWith('ADD '))).toBe(false);
    for (const l of lines.filter((l) => l.startsWith('COPY ') && !l.includes('--from='))) {
      const parts = l.split(/\s+/).slice(1, -1);
      for (const p of parts) expect(existsSync(join(root, p)), p).toBe(true);
    }
  });
});
