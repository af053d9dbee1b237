/** The sidecar's one configuration source: flags, then KUEUER_* env vars, then defaults. */
import {
  adminListenOption,
  appOption,
  backendOption,
  concurrencyOption,
  kafkaOptions,
  logLevelOption,
  queueOption,
} from '../shared/common-options.js';
import { byteSizeIn, type OptionSpec } from '../shared/options.js';

export function maxResponseOption(): OptionSpec<number> {
  return {
    flag: 'max-response',
    env: 'KUEUER_MAX_RESPONSE',
    description: 'largest app response body sent back; a larger one is answered 502',
    defaultValue: '10MiB',
    parse: byteSizeIn(0, 100 * 1024 ** 2),
  };
}

export const sidecarOptions = {
  app: appOption(),
  backend: backendOption(),
  queue: queueOption(),
  concurrency: concurrencyOption(),
  maxResponseBytes: maxResponseOption(),
  adminListen: adminListenOption('0.0.0.0:9091'),
  ...kafkaOptions(),
  logLevel: logLevelOption(),
};
