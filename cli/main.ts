/** `kueuer <command> [options]`: one CLI, one subcommand per component, so one image serves all. */
import { brokerSecretEnv } from '../shared/broker-secret/env.js';
import { isKueuerError } from '../shared/errors.js';
import { closestName, ConfigError, helpText, parseOptions, type OptionSpecs } from '../shared/options.js';
import { kueuerVersion } from '../shared/version.js';
import { COMMANDS } from './commands.js';

function usage(): string {
  return [
    'Usage: kueuer <command> [options]',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(10)} ${c.summary}`),
    '',
    'Run `kueuer <command> --help` for its options; `kueuer --version` prints the version.',
  ].join('\n');
}

/** Returns the exit code for commands that end; servers keep the process alive. */
export async function main(argv: readonly string[]): Promise<number | undefined> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return name === undefined ? 2 : 0;
  }
  if (name === '--version') {
    console.log(`kueuer ${kueuerVersion()}`);
    return 0;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) {
    const meant = closestName(
      name.replace(/^-+/, ''),
      COMMANDS.map((c) => c.name),
    );
    console.error(
      `kueuer: unknown ${name.startsWith('-') ? 'flag' : 'command'} ${JSON.stringify(name)}${meant ? `; did you mean ${meant}?` : ''}\n\n${usage()}`,
    );
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(helpText(command.usage, command.details ? `${command.summary}\n\n${command.details}` : command.summary, command.options as OptionSpecs));
    return 0;
  }
  if (rest.includes('--version')) {
    console.log(`kueuer ${kueuerVersion()}`);
    return 0;
  }
  const aliases = command.aliases ?? {};
  const args = rest.map((arg) => aliases[arg] ?? arg);
  let values;
  try {
    // Broker Secrets of an operator's shape (mounted, or a RabbitMQ default-user through envFrom) fill the unset KUEUER_* variables.
    Object.assign(process.env, brokerSecretEnv(process.env));
    values = parseOptions(command.options, args, process.env);
  } catch (err) {
    if (isKueuerError(err, 'KUEUER_ERR_CONFIG')) {
      console.error(`kueuer ${name}: ${err.message}`);
      return 2;
    }
    if (err instanceof ConfigError) {
      console.error(`kueuer ${name}: ${err.problems.join(`\nkueuer ${name}: `)}\nRun \`kueuer ${name} --help\` for the options.`);
      return 2;
    }
    throw err;
  }
  try {
    const code = await command.run(values);
    if (typeof code === 'number') return code;
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
