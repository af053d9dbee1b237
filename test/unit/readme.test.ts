import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { COMMANDS } from '../../cli/commands.js';
import type { OptionSpecs } from '../../shared/options.js';

const readme = readFileSync(join(import.meta.dirname, '..', '..', 'README.md'), 'utf8');
const rows = readme.split('\n').filter((l) => l.startsWith('| `--'));

describe('README', () => {
  for (const command of COMMANDS) {
    for (const spec of Object.values(command.options as OptionSpecs)) {
      it(`documents ${command.name} --${spec.flag}, ${spec.env} and its default`, () => {
        const matching = rows.filter((r) => r.startsWith(`| \`--${spec.flag}\` | \`${spec.env}\` |`));
        expect(matching.length).toBeGreaterThan(0);
        const expected = spec.defaultValue === undefined ? (spec.optional ? 'optional' : 'required') : `\`${spec.defaultValue}\``;
        expect(matching.some((r) => r.split('|')[3]!.trim() === expected)).toBe(true);
      });
    }
  }

  it('names the two commands', () => {
    expect(readme).toContain('npm ci && npm start');
    expect(readme).toContain('npm ci && npm test');
  });
});
