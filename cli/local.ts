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
import { byteSizeIn, ConfigError, durationIn, formatHostPort, integerIn, type OptionValues } from '../shared/options.js';
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
  maxQueued: {
    flag: 'max-queued',
    env: 'KUEUER_MAX_QUEUED',
    description: 'memory backend: requests waiting in the embedded queue at most; beyond it new requests get 503 queue_full',
    defaultValue: '10000',
    parse: integerIn(1, 1_000_000),
  },
  maxQueuedBytes: {
    flag: 'max-queued-bytes',
    env: 'KUEUER_MAX_QUEUED_BYTES',
    description: 'memory backend: bytes of waiting requests (bodies and metadata) at most, at least --max-body; beyond it 503 queue_full',
    defaultValue: '256MiB',
    parse: byteSizeIn(1024, 64 * 1024 ** 3),
  },
  adminListen: adminListenOption('127.0.0.1:9090'),
  ...kafkaOptions(),
  logLevel: logLevelOption(),
};

export type LocalOptions = OptionValues<typeof localOptions>;

export async function runLocal(o: LocalOptions, log: Logger): Promise<Running> {
  if (o.backend.kind === 'memory' && o.maxQueuedBytes < o.maxBodyBytes) {
    throw new ConfigError([
      `--max-queued-bytes (${o.maxQueuedBytes}) is below --max-body (${o.maxBodyBytes}): the largest accepted request could never be queued`,
    ]);
  }
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
