/** `npm run docs`: rewrites the generated reference docs from the code (scripts/dev/docs-reference.ts). */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { annotationCoverage } from './docs-annotations.js';
import { renderReferenceDocs } from './docs-reference.js';

const root = join(import.meta.dirname, '..', '..', '..');
const docs = renderReferenceDocs((path) => readFileSync(join(root, path), 'utf8'));
for (const [path, text] of Object.entries(docs)) {
  const before = readFileSync(join(root, path), 'utf8');
  if (before !== text) writeFileSync(join(root, path), text);
  console.log(`${before === text ? 'unchanged' : 'rewritten'} ${path}`);
}

// An annotation the webhook reads but no table lists cannot be rendered: say which row to write.
let missing = 0;
for (const { table, read, documented } of annotationCoverage()) {
  for (const key of read.filter((k) => !documented.includes(k))) {
    console.error(
      `${key} is read on ${table}s but docs/reference/annotations.md has no row for it: add one to ${table}Rows() in scripts/dev/docs-annotations.ts`,
    );
    missing++;
  }
  for (const key of documented.filter((k) => !read.includes(k))) {
    console.error(`${key} has a row in ${table}Rows() (scripts/dev/docs-annotations.ts) but the webhook does not read it on ${table}s: remove the row`);
    missing++;
  }
}
if (missing) process.exitCode = 1;
