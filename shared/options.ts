/**
 * Declarative command-line/environment options. Each component lists its
 * options once (flag, env var, default, parser, help); this module turns argv
 * and the environment into validated values and reports every bad value with
 * the flag and variable that carried it. Precedence: flag, then env, then default.
 */
import { parseArgs } from 'node:util';
import { KueuerError } from './errors.js';

export interface OptionSpec<T> {
  /** Flag name without dashes, e.g. `listen`. */
  flag: string;
  env: string;
  description: string;
  /** Raw default, as a user would type it; absent means required unless `optional`. */
  defaultValue?: string;
  /** No default and not required: the value is undefined when not given. */
  optional?: boolean;
  /** Parses a raw value or throws an Error whose message says what is accepted. */
  parse: (raw: string) => T;
}

export type OptionSpecs = Record<string, OptionSpec<unknown>>;
/** The value one spec parses to. */
export type OptionValue<S> = S extends OptionSpec<infer T> ? T : never;
export type OptionValues<S extends OptionSpecs> = {
  [K in keyof S]: S[K] extends OptionSpec<infer T> ? (S[K] extends { optional: true } ? T | undefined : T) : never;
};

export class ConfigError extends KueuerError {
  constructor(readonly problems: string[]) {
    super('KUEUER_ERR_CONFIG', problems.join('\n'));
  }
}

export function parseOptions<S extends OptionSpecs>(specs: S, argv: readonly string[], env: Record<string, string | undefined>): OptionValues<S> {
  const parseConfig: Record<string, { type: 'string' }> = {};
  for (const spec of Object.values(specs)) parseConfig[spec.flag] = { type: 'string' };
  let flags: Record<string, string | boolean | undefined>;
  try {
    ({ values: flags } = parseArgs({ args: [...argv], options: parseConfig, strict: true, allowPositionals: false }));
  } catch (err) {
    throw new ConfigError([
      argvProblem(
        err as Error & { code?: string },
        Object.values(specs).map((s) => s.flag),
      ),
    ]);
  }
  const problems: string[] = [];
  const values: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(specs)) {
    const fromFlag = flags[spec.flag];
    const fromEnv = env[spec.env];
    const raw = typeof fromFlag === 'string' ? fromFlag : fromEnv !== undefined && fromEnv !== '' ? fromEnv : spec.defaultValue;
    const source = typeof fromFlag === 'string' ? `--${spec.flag}` : fromEnv ? `${spec.env}` : 'default';
    if (raw === undefined && spec.optional) {
      values[key] = undefined;
      continue;
    }
    if (raw === undefined) {
      problems.push(`missing --${spec.flag} (or ${spec.env}): ${spec.description}`);
      continue;
    }
    try {
      values[key] = spec.parse(raw);
    } catch (err) {
      problems.push(`invalid --${spec.flag} (${spec.env}) from ${source}: ${(err as Error).message}`);
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return values as OptionValues<S>;
}

/** One line for what node:util's parseArgs refused, naming the closest known flag for a typo. */
function argvProblem(err: Error & { code?: string }, flags: string[]): string {
  const quoted = /'([^']*)'/.exec(err.message)?.[1] ?? '';
  switch (err.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION': {
      const given = quoted.split('=')[0]!;
      const meant = given.startsWith('--') ? closestName(given.slice(2), flags) : undefined;
      return `unknown flag ${given}${meant ? `; did you mean --${meant}?` : ''}`;
    }
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
      return `unexpected argument ${JSON.stringify(quoted)}; options are given as --flag value`;
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      return `${quoted.split(' ')[0]} needs a value`;
    default:
      return err.message;
  }
}

/** Edit distance (insertions, deletions, substitutions, adjacent swaps). */
function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]!;
}

/** The candidate a mistyped name most likely meant: a unique prefix match, or the nearest within a third of its length (at least 2 edits). */
export function closestName(given: string, candidates: readonly string[]): string | undefined {
  const g = given.toLowerCase();
  const prefixed = candidates.filter((c) => g.length >= 2 && c.startsWith(g));
  if (prefixed.length === 1) return prefixed[0];
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(g.length / 3)) + 1;
  for (const c of candidates) {
    const distance = editDistance(g, c);
    if (distance < bestDistance) [best, bestDistance] = [c, distance];
  }
  return best;
}

export function helpText(usage: string, summary: string, specs: OptionSpecs): string {
  const lines = [`Usage: ${usage}`, '', summary, '', 'Options (each also read from its environment variable):'];
  const flags = Object.values(specs).map((spec) => `  --${spec.flag} <value>`);
  // The second column starts two spaces after the longest flag, so no flag runs into its variable.
  const width = Math.max(34, ...flags.map((f) => f.length + 2));
  Object.values(specs).forEach((spec, i) => {
    const dflt = spec.defaultValue !== undefined ? `default ${spec.defaultValue}` : spec.optional ? 'optional' : 'required';
    lines.push(flags[i]!.padEnd(width) + `${spec.env} (${dflt})`, `      ${spec.description}`);
  });
  lines.push('  --help'.padEnd(width) + 'show this help', '  --version'.padEnd(width) + 'print the version');
  return lines.join('\n');
}

// ---- value parsers -------------------------------------------------------

export interface HostPort {
  host: string;
  port: number;
}

export function parseHostPort(raw: string): HostPort {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s[\]]+)):(\d{1,5})$/.exec(raw);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new Error(`expected HOST:PORT such as 127.0.0.1:8080, got ${JSON.stringify(raw)}`);
  return { host: (m[1] ?? m[2])!, port };
}

export function formatHostPort({ host, port }: HostPort): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

export function integerIn(min: number, max: number): (raw: string) => number {
  return (raw) => {
    const n = /^\d+$/.test(raw.trim()) ? Number(raw) : NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      throw new Error(`expected an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`);
    }
    return n;
  };
}

type DurationUnit = 'ms' | 's' | 'm' | 'h';
const DURATION_UNITS: Record<DurationUnit, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * `500ms`, `60s`, `2m`, `1h` → milliseconds: the one duration grammar of every option.
 * `bareUnit`: the unit of a number written without one, for an option that took plain numbers before (else a unit is required).
 */
export function durationIn(minMs: number, maxMs: number, bareUnit?: DurationUnit): (raw: string) => number {
  const bare = bareUnit === undefined ? '' : ` (a bare number is ${bareUnit === 's' ? 'seconds' : bareUnit})`;
  return (raw) => {
    const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(raw.trim());
    const unit = (m?.[2] as DurationUnit | undefined) ?? bareUnit;
    const ms = m && unit ? Math.round(Number(m[1]) * DURATION_UNITS[unit]) : NaN;
    if (!m || !Number.isFinite(ms)) throw new Error(`expected a duration such as 500ms, 60s or 2m${bare}, got ${JSON.stringify(raw)}`);
    if (ms < minMs || ms > maxMs) throw new Error(`expected a duration from ${minMs} ms to ${maxMs} ms, got ${JSON.stringify(raw)}`);
    return ms;
  };
}

const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, kb: 1e3, mb: 1e6, gb: 1e9, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3 };

/** `1048576`, `512KiB`, `10MiB`, `1MB` → bytes. */
export function byteSizeIn(min: number, max: number): (raw: string) => number {
  return (raw) => {
    const m = /^(\d+)\s*([a-zA-Z]*)$/.exec(raw.trim());
    const unit = m ? SIZE_UNITS[m[2]!.toLowerCase()] : undefined;
    const bytes = m && unit ? Number(m[1]) * unit : NaN;
    if (!Number.isSafeInteger(bytes)) throw new Error(`expected a size such as 10MiB, 512KiB or 1048576, got ${JSON.stringify(raw)}`);
    if (bytes < min || bytes > max) throw new Error(`expected a size from ${min} to ${max} bytes, got ${JSON.stringify(raw)}`);
    return bytes;
  };
}

export function oneOf<T extends string>(choices: readonly T[]): (raw: string) => T {
  return (raw) => {
    if (!(choices as readonly string[]).includes(raw)) {
      throw new Error(`expected one of ${choices.join(', ')}, got ${JSON.stringify(raw)}`);
    }
    return raw as T;
  };
}

/** A TCP port, digits only (no sign, no spaces), from 1 to 65535. */
export function portNumber(raw: string): number {
  const n = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!(n >= 1 && n <= 65535)) throw new Error(`expected a port number from 1 to 65535, got ${JSON.stringify(raw)}`);
  return n;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** A Kubernetes object name that must be a DNS label (RFC 1123); `what` names it in the error, e.g. "a Secret name". */
export function dnsLabel(what: string): (raw: string) => string {
  return (raw) => {
    if (!DNS_LABEL.test(raw)) throw new Error(`expected ${what}, got ${JSON.stringify(raw)}`);
    return raw;
  };
}
