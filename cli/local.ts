/**
 * `kueuer local`: the responder and a sidecar in one process, over one
 * transport (the in-process broker by default). It has no component of its
 * own: it composes the responder's and the sidecar's start functions.
 */
import type { Logger } from 'pino';
import { listenOption, responderBehaviourOptions } from '../responder/config.js';
import { startResponder } from '../responder/start.js';
import { serveAdmin } from '../shared/admin-server.js';
import { adminListenOption, appOption, backendOption, concurrencyOption, kafkaOptions, logLevelOption, queueOption } from '../shared/common-options.js';
import { newRegistry } from '../shared/metrics.js';
import { notReadyReason, openBackend, type Running } from '../shared/open-backend.js';
import { durationIn, formatHostPort, type OptionValues } from '../shared/options.js';
import { maxResponseOption, retryOptions } from '../sidecar/config.js';
import { startSidecar } from '../sidecar/start.js';

export const localOptions = {
  listen: listenOption('127.0.0.1:8080'),
  app: appOption(),
  backend: backendOption('memory'),
  queue: queueOption('default'),
  concurrency: concurrencyOption(),
  ...responderBehaviourOptions(),
  maxResponseBytes: maxResponseOption(),
  ...retryOptions(),
  visibilityTimeoutMs: {
    flag: 'visibility-timeout',
    env: 'KUEUER_VISIBILITY_TIMEOUT',
    description: 'memory backend: how long a taken, unacked request stays hidden without a heartbeat before it is redelivered',
    defaultValue: '30s',
    parse: durationIn(100, 3_600_000),
  },
  adminListen: adminListenOption('127.0.0.1:9090'),
  ...kafkaOptions(),
  logLevel: logLevelOption(),
};

export type LocalOptions = OptionValues<typeof localOptions>;

export async function runLocal(o: LocalOptions, log: Logger): Promise<Running> {
  const registry = newRegistry();
  const transport = await openBackend(o, log, 'local');
  const sidecar = await startSidecar(o, transport, registry, log.child({ part: 'sidecar' }));
  const { responder, address } = await startResponder(o, transport, registry, log.child({ part: 'responder' }));
  const admin = await serveAdmin({ registry, log, notReadyReason: notReadyReason(transport, () => sidecar.notReadyReason()) }, o.adminListen);
  log.info({ listen: formatHostPort(address), admin: admin.address, app: formatHostPort(o.app), backend: transport.kind, queue: o.queue }, 'local stack ready');
  return {
    async stop() {
      await responder.drain(o.drainTimeoutMs);
      await sidecar.stop();
      await admin.admin.close();
      await transport.close();
    },
  };
}
