/**
 * Failures that retrying cannot mend (a broker refusing Kueuer's credentials
 * or vhost), found after start-up by code that cannot end the process itself.
 * The CLI registers the one handler (drain, then exit 1); a failure reported
 * before that is handed over on registration.
 */
import { KueuerError } from './errors.js';

type FatalHandler = (err: KueuerError) => void;

let handler: FatalHandler | undefined;
let pending: KueuerError | undefined;

export function reportFatal(err: KueuerError): void {
  if (handler) handler(err);
  else pending ??= err;
}

export function onFatal(h: FatalHandler): void {
  handler = h;
  const err = pending;
  pending = undefined;
  if (err) h(err);
}
