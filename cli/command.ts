/** What a `kueuer` subcommand is (cli/commands.ts lists them); its own module, so the commands and the list do not import each other. */
import type { OptionSpecs, OptionValues } from '../shared/options.js';

export interface Command<S extends OptionSpecs> {
  name: string;
  usage: string;
  /** One line, for `kueuer --help`. */
  summary: string;
  /** More for the command's own --help, after the summary. */
  details?: string;
  options: S;
  /** Short flags, each rewritten to its long flag before parsing (`-f` → `--filename`). */
  aliases?: Record<string, string>;
  /** Resolves with an exit code for a command that ends (inject, check, status); servers resolve with nothing and keep running. */
  run(values: OptionValues<S>): Promise<number | void>;
}
