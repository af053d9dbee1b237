/**
 * The `kueuer` subcommands: each names its options and maps their parsed
 * values to its component's start function, then drains it on SIGTERM.
 */
import type { Logger } from 'pino';
import { responderOptions } from '../responder/config.js';
import { runResponder } from '../responder/start.js';
import { createLogger } from '../shared/logger.js';
import type { Running } from '../shared/open-backend.js';
import type { LogLevel } from '../shared/common-options.js';
import type { OptionSpec, OptionSpecs, OptionValues } from '../shared/options.js';
import { sidecarOptions } from '../sidecar/config.js';
import { runSidecar } from '../sidecar/start.js';
import { webhookOptions } from '../webhook/config.js';
import { runWebhook } from '../webhook/start.js';
import type { Command } from './command.js';
import { exitOnSignal } from './lifecycle.js';
import { checkCommand } from './check.js';
import { injectCommand } from './inject.js';
import { localOptions, runLocal } from './local.js';
import { statusCommand } from './status.js';

export { localOptions } from './local.js';
export type { Command } from './command.js';

/** A command that starts `start` with its logger and stops it on SIGTERM or SIGINT. */
function command<S extends OptionSpecs & { logLevel: OptionSpec<LogLevel> }>(
  about: Omit<Command<S>, 'run'>,
  start: (values: OptionValues<S>, log: Logger) => Promise<Running>,
): Command<S> {
  return {
    ...about,
    async run(values) {
      // Sound by the bound on S; TypeScript does not resolve OptionValues of a generic S.
      const log = createLogger(about.name, (values as { logLevel: LogLevel }).logLevel);
      const running = await start(values, log);
      exitOnSignal(log, () => running.stop());
    },
  };
}

export const responderCommand = command(
  {
    name: 'responder',
    usage: 'kueuer responder --listen HOST:PORT --backend URL --queue NAME [options]\n       kueuer responder --backend URL --routes cluster [options]',
    summary: "The front door: publishes every HTTP request to the queue and answers each client with the app's response.",
    options: responderOptions,
  },
  runResponder,
);

export const sidecarCommand = command(
  {
    name: 'sidecar',
    usage: 'kueuer sidecar --app HOST:PORT --backend URL --queue NAME [--concurrency N] [options]',
    summary: 'Runs beside the app: takes requests from the queue, calls the app, publishes its response, then acks.',
    options: sidecarOptions,
  },
  runSidecar,
);

export const localCommand = command(
  {
    name: 'local',
    usage: 'kueuer local --listen HOST:PORT --app HOST:PORT [--backend URL] [--queue NAME] [--concurrency N] [options]',
    summary: 'The responder and a sidecar in one process, on the embedded in-memory broker by default.',
    options: localOptions,
  },
  runLocal,
);

export const webhookCommand = command(
  {
    name: 'webhook',
    usage: 'kueuer webhook --listen HOST:PORT --tls-cert FILE --tls-key FILE [options]',
    summary: 'The admission webhook: injects the sidecar into opted-in pods and points opted-in Services at the responder (label kueuer.io/inject: "true").',
    options: webhookOptions,
  },
  runWebhook,
);

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const COMMANDS: Array<Command<any>> = [responderCommand, sidecarCommand, localCommand, webhookCommand, injectCommand, checkCommand, statusCommand];
