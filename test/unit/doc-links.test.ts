/** Every relative link in README.md, the top-level *.md files and docs/ names a file that exists, and an anchor a heading of it. */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..');

function markdownFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) return markdownFiles(p);
    return p.endsWith('.md') ? [p] : [];
  });
}

/** The text a reader sees as Markdown: fenced blocks and inline code removed (links there are not links). */
function prose(md: string): string {
  return md.replace(/^(```|~~~)[\s\S]*?^\1/gm, '').replace(/`[^`\n]*`/g, '');
}

/** GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens. */
function slug(heading: string): string {
  return heading
    .replace(/`/g, '')
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

/** The anchors a Markdown file offers: its headings' slugs (repeats get -1, -2, …). */
function anchors(md: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const [, heading] of md.replace(/^(```|~~~)[\s\S]*?^\1/gm, '').matchAll(/^#{1,6} (.+)$/gm)) {
    const base = slug(heading!.trim());
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

/** `[text](target)` links of a file that point inside the repository. */
function relativeLinks(md: string): string[] {
  return [...prose(md).matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]!).filter((t) => !/^[a-z]+:/i.test(t));
}

/** What is wrong with a link from `file`, or undefined. */
function brokenLink(file: string, target: string): string | undefined {
  const [path, fragment] = target.split('#') as [string, string | undefined];
  const resolved = path === '' ? file : join(dirname(file), decodeURIComponent(path));
  if (!existsSync(resolved)) return `${target}: no such file`;
  if (fragment === undefined || !resolved.endsWith('.md')) return undefined;
  return anchors(readFileSync(resolved, 'utf8')).has(fragment) ? undefined : `${target}: no heading with that anchor`;
}

describe('links in the docs', () => {
  const files = [
    ...readdirSync(root)
      .filter((f) => f.endsWith('.md'))
      .map((f) => join(root, f)),
    ...markdownFiles(join(root, 'docs')),
  ];

  it('finds the docs and their links', () => {
    expect(files.map((f) => relative(root, f))).toEqual(expect.arrayContaining(['README.md', 'DEVELOPMENT.md', 'docs/operations.md', 'docs/reference/cli.md']));
    expect(relativeLinks(readFileSync(join(root, 'README.md'), 'utf8')).length).toBeGreaterThan(20);
  });

  for (const file of files) {
    it(`${relative(root, file)}: every relative link resolves`, () => {
      const broken = relativeLinks(readFileSync(file, 'utf8'))
        .map((t) => brokenLink(file, t))
        .filter(Boolean);
      expect(broken).toEqual([]);
    });
  }

  it('computes anchors as GitHub does, and finds a broken link', () => {
    expect(slug('`kueuer responder`')).toBe('kueuer-responder');
    expect(slug('Self-issued (`--cert-source self`)')).toBe('self-issued---cert-source-self');
    expect(slug('Migrating from the kueuer.io/inject annotation')).toBe('migrating-from-the-kueuerioinject-annotation');
    expect([...anchors('# A\n## B\n## B\n```\n## C\n```\n')]).toEqual(['a', 'b', 'b-1']);
    expect(relativeLinks('[a](x.md) `[b](y.md)` [c](https://e.org) [d](#z)')).toEqual(['x.md', '#z']);
    expect(brokenLink(join(root, 'README.md'), 'docs/no-such.md')).toBe('docs/no-such.md: no such file');
    expect(brokenLink(join(root, 'README.md'), '#no-such-heading')).toBe('#no-such-heading: no heading with that anchor');
    expect(brokenLink(join(root, 'README.md'), '#quick-start-on-a-cluster')).toBeUndefined();
  });
});
