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
for (const line of lines) {
  if (line.startsWith('FROM ')) stages.push([]);
  stages.at(-1)?.push(line);
}
const runtime = stages.at(-1)!;

describe('Dockerfile', () => {
  it('is multi-stage on a pinned slim Node 24 (active LTS) base', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    for (const s of stages) expect(s[0]).toMatch(/^FROM node:24-[a-z]+-slim( AS \w+)?$/);
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
