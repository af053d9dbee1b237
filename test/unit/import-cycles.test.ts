/**
 * No import cycles in the product code, type-only imports included (issue 23:
 * cli/commands.ts and the commands imported each other for the Command type).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..');
const PRODUCT = ['cli', 'shared', 'sidecar', 'webhook', 'responder'];

function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir)).flatMap((name) => {
    const path = `${dir}/${name}`;
    if (statSync(join(ROOT, path)).isDirectory()) return sources(path);
    return path.endsWith('.ts') ? [path] : [];
  });
}

/** The product modules a file imports (static, dynamic and type-only), as paths from the root. */
function importsOf(file: string): string[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const specifiers = [...text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)].map((m) => m[1]!);
  return specifiers.map((s) => normalize(join(dirname(file), s)).replace(/\.js$/, '.ts'));
}

/** Every cycle, each once, as the files around it. */
function cycles(graph: Map<string, string[]>): string[][] {
  const found = new Map<string, string[]>();
  const visit = (file: string, path: string[]) => {
    const at = path.indexOf(file);
    if (at >= 0) {
      const cycle = path.slice(at);
      found.set([...cycle].sort().join(' '), cycle);
      return;
    }
    if (path.length > 40) return;
    for (const next of graph.get(file) ?? []) visit(next, [...path, file]);
  };
  const done = new Set<string>();
  for (const file of graph.keys()) {
    if (!done.has(file)) visit(file, []);
    done.add(file);
  }
  return [...found.values()];
}

describe('the import graph of the product code', () => {
  it('has no cycle, type-only imports included', () => {
    const files = PRODUCT.flatMap(sources);
    const graph = new Map(files.map((f) => [f, importsOf(f).filter((i) => files.includes(i))]));
    expect(cycles(graph)).toEqual([]);
  });
});
