/**
 * Renderers of the generated reference docs (docs/reference/*.md), pure:
 * each takes the code's own definitions (option specs, metric registries)
 * and returns Markdown. Hand-written prose sits around generated regions,
 * marked `<!-- generated: KEY -->` … `<!-- end generated: KEY -->`, which
 * fillGenerated rewrites; `npm run docs` writes the files and
 * test/unit/docs-reference.test.ts fails when one is out of step.
 */
import type { OptionSpec, OptionSpecs } from '../../shared/options.js';

/** The default column of an option: its raw default, or whether it must be given. */
export function defaultCell(spec: Pick<OptionSpec<unknown>, 'defaultValue' | 'optional'>): string {
  if (spec.defaultValue === '') return 'none';
  if (spec.defaultValue !== undefined) return `\`${spec.defaultValue}\``;
  return spec.optional ? 'optional' : 'required';
}

/** A table cell: pipes escaped, so a description never splits its row. */
export function cell(text: string): string {
  return text.replaceAll('|', '\\|');
}

/** `| flag | env var | default | meaning |`, one row per option, in the order `--help` prints them. */
export function optionTable(specs: OptionSpecs, aliases: Record<string, string> = {}): string {
  const short = Object.fromEntries(Object.entries(aliases).map(([s, long]) => [long.replace(/^--/, ''), s]));
  return [
    '| flag | env var | default | meaning |',
    '|---|---|---|---|',
    ...Object.values(specs).map((s) => {
      const alias = short[s.flag] ? ` (\`${short[s.flag]}\`)` : '';
      return `| \`--${s.flag}\`${alias} | \`${s.env}\` | ${defaultCell(s)} | ${cell(s.description)} |`;
    }),
  ].join('\n');
}

const begin = (key: string) => `<!-- generated: ${key} -->`;
const end = (key: string) => `<!-- end generated: ${key} -->`;

/** A generated region holding `body`, as it appears in a file. */
export function region(key: string, body: string): string {
  return `${begin(key)}\n${body}\n${end(key)}`;
}

/** The keys of the generated regions `doc` has, in order. */
export function regionKeys(doc: string): string[] {
  return [...doc.matchAll(/<!-- generated: (.+?) -->/g)].map((m) => m[1]!);
}

/**
 * `doc` with every generated region's body replaced by `bodies[key]`. A region
 * with no body, or a body with no region, is an error naming the key: the
 * renderer and the file must agree on what is generated.
 */
export function fillGenerated(doc: string, bodies: Record<string, string>): string {
  const keys = regionKeys(doc);
  const unknown = keys.filter((k) => !(k in bodies));
  if (unknown.length) throw new Error(`generated regions nothing renders: ${unknown.join(', ')}`);
  const missing = Object.keys(bodies).filter((k) => !keys.includes(k));
  if (missing.length) throw new Error(`no region for: ${missing.join(', ')} (add ${begin(missing[0]!)} … ${end(missing[0]!)})`);
  let out = doc;
  for (const key of keys) {
    const start = out.indexOf(begin(key));
    const stop = out.indexOf(end(key), start);
    if (stop < 0) throw new Error(`${begin(key)} has no ${end(key)}`);
    out = out.slice(0, start) + region(key, bodies[key]!) + out.slice(stop + end(key).length);
  }
  return out;
}

export interface CommandDoc {
  name: string;
  usage: string;
  summary: string;
  options: OptionSpecs;
  aliases?: Record<string, string>;
}

/** Every command's usage lines (as `--help` prints them), aligned after the command name, in a code block. */
export function synopsis(commands: readonly CommandDoc[]): string {
  const lines = commands.flatMap((c) => c.usage.split('\n').map((l) => l.trim()));
  const width = Math.max(...commands.map((c) => c.name.length));
  const aligned = lines.map((l) => l.replace(/^kueuer (\S+) /, (_, name: string) => `kueuer ${name.padEnd(width)} `));
  return ['```', ...aligned, '```'].join('\n');
}

/**
 * docs/reference/cli.md from its hand-written text and the commands: the synopsis and each
 * command's options table are generated; a command the file has no section
 * for yet gets one at the end (its summary and its table), so a new command
 * is documented by `npm run docs` before anyone writes prose for it.
 */
export function renderCliReference(doc: string, commands: readonly CommandDoc[]): string {
  const key = (c: CommandDoc) => `options ${c.name}`;
  const present = new Set(regionKeys(doc));
  const added = commands
    .filter((c) => !present.has(key(c)))
    .map((c) => `\n## \`kueuer ${c.name}\`\n\n${c.summary}\n\n${region(key(c), '')}\n`)
    .join('');
  const bodies = { synopsis: synopsis(commands), ...Object.fromEntries(commands.map((c) => [key(c), optionTable(c.options, c.aliases)])) };
  return fillGenerated(doc.trimEnd() + '\n' + added, bodies);
}

export interface MetricDoc {
  name: string;
  type: string;
  help: string;
  /** Label names other than `queue`. */
  labels: string[];
  /** Whether the series carries the `queue` label. */
  perQueue: boolean;
}

/** One table of a component's metrics. */
export function metricTable(metrics: readonly MetricDoc[]): string {
  return [
    '| metric | type | labels | meaning |',
    '|---|---|---|---|',
    ...metrics.map((m) => {
      const labels = [...(m.perQueue ? ['queue'] : []), ...m.labels].map((l) => `\`${l}\``).join(', ') || 'none';
      return `| \`${m.name}\` | ${m.type} | ${labels} | ${cell(m.help)} |`;
    }),
  ].join('\n');
}

/** docs/reference/metrics.md's generated regions: one table per component. */
export function metricBodies(components: Record<string, readonly MetricDoc[]>): Record<string, string> {
  return Object.fromEntries(Object.entries(components).map(([component, metrics]) => [`metrics ${component}`, metricTable(metrics)]));
}

export interface AnnotationRow {
  key: string;
  default: string;
  accepts: string;
}

/** `| annotation | default | accepted values |` rows. */
export function annotationTable(rows: readonly AnnotationRow[], heading = 'annotation'): string {
  return [`| ${heading} | default | accepted values |`, '|---|---|---|', ...rows.map((r) => `| \`${r.key}\` | ${cell(r.default)} | ${cell(r.accepts)} |`)].join(
    '\n',
  );
}
