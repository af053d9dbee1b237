/** `npm run docs`: rewrites the generated reference docs from the code (scripts/docs-reference.ts). */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderReferenceDocs } from './docs-reference.js';

const root = join(import.meta.dirname, '..', '..');
const docs = renderReferenceDocs((path) => readFileSync(join(root, path), 'utf8'));
for (const [path, text] of Object.entries(docs)) {
  const before = readFileSync(join(root, path), 'utf8');
  if (before !== text) writeFileSync(join(root, path), text);
  console.log(`${before === text ? 'unchanged' : 'rewritten'} ${path}`);
}
