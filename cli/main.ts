/** `kueuer <command> [options]`: one CLI, one subcommand per component, so one image serves all. */
import { ConfigError, helpText, parseOptions } from '../shared/options.js';
import { COMMANDS } from './commands.js';

function usage(): string {
  return [
    'Usage: kueuer <command> [options]',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(10)} ${c.summary}`),
    '',
    'Run `kueuer <command> --help` for its options.',
  ].join('\n');
}

/** Returns the exit code for commands that end; servers keep the process alive. */
export async function main(argv: readonly string[]): Promise<number | undefined> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return name === undefined ? 2 : 0;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) {
    console.error(`kueuer: unknown command ${JSON.stringify(name)}\n\n${usage()}`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(helpText(command.usage, command.summary, command.options));
    return 0;
  }
  let values;
  try {
    values = parseOptions(command.options, rest, process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`kueuer ${name}: ${err.problems.join(`\nkueuer ${name}: `)}\nRun \`kueuer ${name} --help\` for the options.`);
      return 2;
    }
    throw err;
  }
  try {
    await command.run(values);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`kueuer ${name}: ${err.problems.join(`\nkueuer ${name}: `)}`);
      return 2;
    }
    console.error(`kueuer ${name}: cannot start: ${(err as Error).message}`);
    return 1;
  }
  return undefined;
}
