import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** Kueuer's version from package.json, found from this file in src or in dist. */
export function kueuerVersion(): string {
  let dir = import.meta.dirname;
  for (let i = 0; i < 4; i++) {
    const candidate = join(dir, 'package.json');
    if (existsSync(candidate)) {
      const pkg = JSON.parse(readFileSync(candidate, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'kueuer' && pkg.version) return pkg.version;
    }
    dir = dirname(dir);
  }
  return '0.0.0-unknown';
}
