/** The error catalogue lists exactly the codes the sources use, and docs/errors.md is its rendering. */
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLIENT_ERRORS, OPERATOR_ERRORS, renderCatalogue } from '../../shared/error-catalogue.js';

const root = join(import.meta.dirname, '..', '..');
function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) return sources(p);
    return p.endsWith('.ts') ? [readFileSync(p, 'utf8')] : [];
  });
}
const code = ['cli', 'shared', 'responder', 'sidecar', 'webhook']
  .flatMap((d) => sources(join(root, d)))
  .filter((s) => !s.includes('export const OPERATOR_ERRORS'));

describe('error catalogue', () => {
  it('has every KUEUER_ERR_* code the sources throw, and no other', () => {
    const used = new Set(code.flatMap((s) => s.match(/KUEUER_ERR_[A-Z_]+/g) ?? []));
    expect([...used].sort()).toEqual(Object.keys(OPERATOR_ERRORS).sort());
  });

  it('has every client error code the sources answer with, and no other', () => {
    // Whitespace-tolerant: the formatter may break any of these across lines.
    const patterns = [
      /fail\(\s*\d{3},\s*'([a-z_]+)'/g,
      /error\(\s*\d{3},\s*'([a-z_]+)'/g,
      /error:\s*'([a-z_]+)'/g,
      /\d{3},\s*'([a-z_]+)',\s/g,
      /status:\s*\d{3},\s*code:\s*'([a-z_]+)'/g,
      /code:\s*'([a-z_]+)',\s*status:\s*\d{3}/g,
      /errorBody\(\s*'([a-z_]+)'/g,
    ];
    const used = new Set(code.flatMap((s) => patterns.flatMap((p) => [...s.matchAll(p)].map((m) => m[1]!))));
    expect([...used].sort()).toEqual(Object.keys(CLIENT_ERRORS).sort());
  });

  it('tells what to do for every code', () => {
    for (const e of [...Object.values(OPERATOR_ERRORS), ...Object.values(CLIENT_ERRORS)]) expect(e.action.length).toBeGreaterThan(10);
  });

  it('is what docs/errors.md shows (UPDATE_GOLDEN=1 rewrites it)', () => {
    const file = join(root, 'docs', 'errors.md');
    if (process.env.UPDATE_GOLDEN) writeFileSync(file, renderCatalogue());
    expect(readFileSync(file, 'utf8')).toBe(renderCatalogue());
  });
});
