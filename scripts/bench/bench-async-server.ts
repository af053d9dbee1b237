/**
 * `kueuer local` with asynchronous requests on request (kueuer.io/async:
 * on-request), for the benchmark: the same responder answers a request with
 * `Prefer: respond-async` 202 and one without synchronously, so async and sync
 * are measured on the same process, queue and app. Takes `kueuer local`'s flags.
 *
 *   node dist/scripts/bench/bench-async-server.js --listen 127.0.0.1:PORT --app 127.0.0.1:APP [--backend amqp://…] …
 */
import { pino } from 'pino';
import { localOptions, runLocal } from '../../cli/local.js';
import { parseOptions } from '../../shared/options.js';

const o = parseOptions(localOptions, process.argv.slice(2), {});
const running = await runLocal({ ...o, async: { mode: 'on-request' } } as typeof o, pino({ level: 'warn' }));
process.on('SIGTERM', () => void running.stop().then(() => process.exit(0)));
