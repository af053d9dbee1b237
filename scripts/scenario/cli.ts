/**
 * The scenario runner's command line (run.ts): parsed and checked once, with
 * the usage in every error.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { APPS } from './plan.js';
import type { VariantId } from './variants.js';

const root = join(import.meta.dirname, '..', '..');

export interface CliOptions {
  name: string;
  variants: VariantId[];
  factor: number;
  maxReplicas: number;
  spikeLoad: number;
  out: string;
  /** Draw the picture and write the page from the records already in <out>/data, running nothing. */
  redraw: boolean;
}

const USAGE =
  'usage: npm run scenario -- <random-delay|worker> [--variants a,b,c] [--factor 6] [--max-replicas 30] [--spike-load 1] [--out docs/scenarios] [--redraw]';

/** Parses the command line; throws with the usage on anything unknown or malformed. */
export function parseArgs(argv: readonly string[]): CliOptions {
  const options: CliOptions = { name: '', variants: ['a', 'b', 'c'], factor: 6, maxReplicas: 30, spikeLoad: 1, out: 'docs/scenarios', redraw: false };
  const number = (flag: string, v: string | undefined, min: number): number => {
    const n = Number(v);
    if (v === undefined || !Number.isFinite(n) || n < min) throw new Error(`${flag}: expected a number ≥ ${min}, got ${JSON.stringify(v)}\n${USAGE}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const v = argv[i + 1];
    if (a === '--variants') {
      const list = (v ?? '').split(',');
      const isVariant = (x: string): x is VariantId => x === 'a' || x === 'b' || x === 'c';
      if (!list.every(isVariant)) throw new Error(`--variants: expected a comma list of a, b, c, got ${JSON.stringify(v)}\n${USAGE}`);
      options.variants = list;
      i++;
    } else if (a === '--factor') options.factor = number(a, argv[++i], 1);
    else if (a === '--max-replicas') options.maxReplicas = Math.round(number(a, argv[++i], 1));
    else if (a === '--redraw') options.redraw = true;
    else if (a === '--spike-load') options.spikeLoad = number(a, argv[++i], 0.01);
    else if (a === '--out') {
      if (!v) throw new Error(`--out needs a directory\n${USAGE}`);
      options.out = v;
      i++;
    } else if (!a.startsWith('-') && !options.name) options.name = a;
    else throw new Error(`unknown argument ${JSON.stringify(a)}\n${USAGE}`);
  }
  if (!APPS[options.name]) throw new Error(`unknown scenario ${JSON.stringify(options.name)}: one of ${Object.keys(APPS).join(', ')}\n${USAGE}`);
  return options;
}

/** The last line a build script of the repository prints (what it built or started). */
export function scriptOutput(script: string, args: string[] = []): string {
  const out = execFileSync('bash', [join(root, script), ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  return out.trim().split('\n').pop() ?? '';
}
