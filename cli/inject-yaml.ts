/**
 * `kueuer inject`'s YAML in and out. Documents are kept as the yaml library's
 * Documents, so what the injection does not change keeps what the user
 * wrote: comments (Helm's `# Source:` lines), quoting, numbers' notation and
 * key order; collections are printed in block style, as kubectl prints them. An empty, comment-only or trailing `---` document is skipped, as
 * kubectl skips it.
 */
import { isDeepStrictEqual } from 'node:util';
import { isMap, isScalar, isSeq, parseAllDocuments, visit, type Document } from 'yaml';

/**
 * YAML 1.1, as kubectl reads manifests (sigs.k8s.io/yaml, go-yaml): `yes`,
 * `on` and `off` are booleans and `0644` is octal, so what comes in and what
 * goes out mean to kubectl what they meant in the user's file.
 */
const KUBECTL_YAML = { version: '1.1' } as const;

/** One document of the manifest: its place (1-based, counting skipped ones), its parsed form and its value. */
export interface ManifestDocument {
  index: number;
  doc: Document;
  value: unknown;
}

/** Reads the manifest's documents; a YAML error names the document and the line. Documents with no content are left out. */
export function parseManifest(text: string, source: string): ManifestDocument[] {
  const docs = parseAllDocuments(text, KUBECTL_YAML);
  if (!Array.isArray(docs)) return [];
  const out: ManifestDocument[] = [];
  docs.forEach((doc, i) => {
    const error = doc.errors[0];
    if (error) throw new Error(`${source}: document ${i + 1}: ${error.message.split('\n')[0]}`);
    const value: unknown = doc.toJS();
    if (value !== null && value !== undefined) out.push({ index: i + 1, doc, value });
  });
  return out;
}

/** Brings `node` (a node of `doc`) to `value`, keeping every node, and so every comment, that already had its value. */
function update(doc: Document, node: unknown, value: unknown): unknown {
  if (isMap(node) && typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const entries = value as Record<string, unknown>;
    const keyOf = (pair: { key: unknown }): string => String(isScalar(pair.key) ? pair.key.value : pair.key);
    node.items = node.items.filter((pair) => Object.hasOwn(entries, keyOf(pair)));
    for (const [key, v] of Object.entries(entries)) {
      const pair = node.items.find((p) => keyOf(p) === key);
      if (pair) pair.value = update(doc, pair.value, v);
      else node.set(key, doc.createNode(v));
    }
    return node;
  }
  if (isSeq(node) && Array.isArray(value)) {
    node.items = node.items.slice(0, value.length).map((item, i) => update(doc, item, value[i]));
    for (const v of value.slice(node.items.length)) node.items.push(doc.createNode(v));
    return node;
  }
  if (isScalar(node) && isDeepStrictEqual(node.toJSON(), value)) return node;
  return doc.createNode(value);
}

/** The documents, each with the value the injection gave it, as one multi-document YAML text. */
export function printManifest(docs: Array<{ doc: Document; value: unknown; result: unknown }>): string {
  return docs
    .map(({ doc, value, result }) => {
      if (!isDeepStrictEqual(value, result)) doc.contents = update(doc, doc.contents, result) as Document['contents'];
      // Block style, as kubectl prints YAML: what is added to a one-line `{…}` (or JSON) document would make it
      // unreadable. Keys lose JSON's quotes where YAML needs none; values keep the user's quoting and notation.
      visit(doc, {
        Map: (_, node) => void (node.flow = false),
        Seq: (_, node) => void (node.flow = false),
        Pair: (_, pair) => void (isScalar(pair.key) && (pair.key.type = 'PLAIN')),
      });
      // The separator is written here, once between documents.
      if (doc.directives) doc.directives.docStart = null;
      return doc.toString({ lineWidth: 0 });
    })
    .join('---\n');
}
