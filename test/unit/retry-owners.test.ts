/**
 * One way to retry (issue 23): every loop that tries again is `retry()` of
 * shared/retry.ts, and docs/design.md names, for each control-plane failure,
 * the one layer that owns trying again. The Kafka transport is left for later
 * (its transaction retries are listed as such in docs/design.md).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..');
const PRODUCT = ['cli', 'shared', 'sidecar', 'webhook', 'responder'];
const LEFT_FOR_LATER = ['shared/transport/'];

function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir)).flatMap((name) => {
    const path = `${dir}/${name}`;
    if (statSync(join(ROOT, path)).isDirectory()) return sources(path);
    return path.endsWith('.ts') ? [path] : [];
  });
}

describe('one way to retry', () => {
  it('no product module loops by hand until something succeeds: only shared/retry.ts does', () => {
    const endless = /for \(let \w+ = \w+; ;|for \(;;\)|while \(true\)/;
    const handWritten = PRODUCT.flatMap(sources)
      .filter((f) => f !== 'shared/retry.ts' && !LEFT_FOR_LATER.some((p) => f.startsWith(p)))
      .filter((f) => endless.test(readFileSync(join(ROOT, f), 'utf8')));
    expect(handWritten).toEqual([]);
  });

  it("docs/design.md's table names an owner for each failure, and each owner's file exists", () => {
    const design = readFileSync(join(ROOT, 'docs', 'design.md'), 'utf8');
    const section = design.split('## Who tries again')[1]?.split('\n## ')[0] ?? '';
    const rows = section.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| failure') && !l.startsWith('|---'));
    expect(rows.length).toBeGreaterThanOrEqual(10);
    for (const row of rows) expect(row.split('|')[2]?.trim()).not.toBe('');
    const files = [...section.matchAll(/`((?:shared|webhook|sidecar|cli)\/[\w/.-]+\.ts)`/g)].map((m) => m[1]!);
    expect(files.length).toBeGreaterThan(5);
    for (const f of files) expect(statSync(join(ROOT, f)).isFile(), f).toBe(true);
    expect(section).toContain('shared/transport/kafka/');
  });
});
