/**
 * Waits until the app accepts TCP connections. The sidecar takes nothing from
 * the queue before then: a pod whose app is still starting (loading a model,
 * warming caches) leaves requests to pods that can serve them, instead of
 * holding them and retrying against a closed port.
 */
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { HostPort } from '../shared/options.js';

export function canConnect(target: HostPort, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: target.host, port: target.port });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** Resolves true once the app accepts a connection, or false if `signal` aborts first. */
export async function waitForApp(target: HostPort, log: Logger, signal: AbortSignal, intervalMs = 200): Promise<boolean> {
  const started = Date.now();
  let lastLog = 0;
  while (!signal.aborted) {
    if (await canConnect(target, 1000)) {
      if (Date.now() - started > intervalMs) log.info({ waitedMs: Date.now() - started }, 'the app accepts connections; taking requests');
      return true;
    }
    if (Date.now() - lastLog >= 10_000) {
      lastLog = Date.now();
      log.info({ app: `${target.host}:${target.port}` }, 'waiting for the app to accept connections before taking requests');
    }
    await sleep(intervalMs, undefined, { signal }).catch(() => undefined);
  }
  return false;
}
