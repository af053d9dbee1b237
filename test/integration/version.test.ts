/** `--version` on the CLI and on every subcommand (dist/). */
import { describe, expect, it } from 'vitest';
import { COMMANDS } from '../../cli/commands.js';
import { kueuerVersion } from '../../shared/version.js';
import { runKueuer } from '../helpers/processes.js';

describe('--version', () => {
  it.each([[], ...COMMANDS.map((c) => [c.name])])('kueuer %s --version prints the version and exits 0', async (...name: string[]) => {
    const r = await runKueuer([...name, '--version']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`kueuer ${kueuerVersion()}\n`);
  });

  it('every tool command is listed', () => {
    expect(COMMANDS.map((c) => c.name)).toEqual(expect.arrayContaining(['responder', 'sidecar', 'local', 'webhook', 'inject', 'check', 'status']));
  });
});
