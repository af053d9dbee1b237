import { pino, type Logger } from 'pino';
import type { LogLevel } from './common-options.js';

/** Structured JSON logs; request-path lines carry `reqId`. */
export function createLogger(component: string, level: LogLevel): Logger {
  return pino({ level, base: { component } });
}
