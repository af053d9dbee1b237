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
  kafkaTransactionalId: {
    flag: 'kafka-transactional-id',
    env: 'KUEUER_KAFKA_TRANSACTIONAL_ID',
    description: 'kafka, transactional delivery: the producer\'s transactional id, unique per sidecar and stable across its restarts (default kueuer.<queue>.<hostname>)',
    optional: true as const,
    parse: (raw: string): string => {
      if (!/^[A-Za-z0-9._-]{1,200}$/.test(raw)) throw new Error('use 1 to 200 letters, digits, ".", "_" or "-"');
      return raw;
    },
  },
  logLevel: logLevelOption(),
};
