/**
 * The `kueuer` subcommands. Each parses its options (flags, then env, then
 * defaults), starts its component and its admin server, and drains on SIGTERM.
 */
import { runAutoscaling, type AutoscalingReconciler } from '../webhook/autoscaling/reconciler.js';
import { autoscalingMetrics } from '../webhook/autoscaling/metrics.js';
import { openQueueDepth } from '../webhook/autoscaling/queue-depth.js';
import { readRequestHeaderAuth, subjectAccessReviewer } from '../webhook/autoscaling/delegated-auth.js';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { responderBehaviourOptions, responderOptions, listenOption } from '../responder/config.js';
import { buildAdminServer, listen } from '../shared/admin-server.js';
import {
  adminListenOption,
  appOption,
  backendOption,
  concurrencyOption,
  kafkaOptions,
  logLevelOption,
  queueOption,
} from '../shared/common-options.js';
import { createLogger } from '../shared/logger.js';
import { durationIn, formatHostPort, type HostPort, type OptionSpecs, type OptionValues } from '../shared/options.js';
import type { Logger } from 'pino';
import type { Transport } from '../shared/transport/transport.js';
import type { BackendSpec } from '../shared/transport/create-transport.js';
import type { KafkaDelivery } from '../shared/transport/kafka.js';
import { createTransport } from '../shared/transport/create-transport.js';
import { sidecarOptions, maxResponseOption, retryOptions } from '../sidecar/config.js';
import { exitOnSignal } from './lifecycle.js';
import { injectionConfig, webhookOptions } from '../webhook/config.js';
import { detectNativeSidecars } from '../webhook/cluster-version.js';
import { webhookMetrics } from '../webhook/metrics.js';
import { buildWebhookServer } from '../webhook/server.js';
import { checkKubernetesApi, checkTlsFiles } from '../webhook/preflight.js';
import { kueuerVersion } from '../shared/version.js';
import { routesFromServices, usedResponderPorts } from '../shared/service-routes.js';
import { RouteServer } from '../responder/route-server.js';
import { runEndpointMirror } from '../webhook/endpoint-mirror.js';
import { ConfigError } from '../shared/options.js';
import { watchAllServices } from '../shared/kube/services.js';
import type { ObjectSource } from '../shared/kube/object-source.js';
import type { V1Service } from '@kubernetes/client-node';
import { startResponder, startSidecar } from './components.js';

export interface Command<S extends OptionSpecs> {
  name: string;
  usage: string;
  summary: string;
  options: S;
  run(values: OptionValues<S>): Promise<void>;
}

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

/** The broker connection of a command, from its --backend and Kafka options. */
async function openBackend(
  o: { backend: BackendSpec; kafkaPartitions: number; delivery: KafkaDelivery; kafkaTransactionalId?: string | undefined; visibilityTimeoutMs?: number },
  log: Logger,
  component: string,
): Promise<Transport> {
  if (o.backend.kind === 'memory' && component !== 'local') {
    throw new Error(`--backend memory only works in \`kueuer local\`, where the ${component === 'responder' ? 'sidecar' : 'responder'} shares the process`);
  }
  return createTransport(o.backend, log, {
    visibilityTimeoutMs: o.visibilityTimeoutMs ?? 30_000,
    kafkaPartitions: o.kafkaPartitions,
    delivery: o.delivery,
    ...(o.kafkaTransactionalId ? { kafkaTransactionalId: o.kafkaTransactionalId } : {}),
  });
}

/** /metrics, /healthz and /readyz of a command; not ready while the broker is away or `alsoNotReady` says why. */
async function serveAdmin(registry: Registry, log: Logger, at: HostPort, transport: Transport, alsoNotReady: () => string | null = () => null) {
  const admin = buildAdminServer({ registry, log, notReadyReason: () => (transport.isReady() ? alsoNotReady() : 'broker not connected') });
  const address = await listen(admin, at);
  return { admin, address: formatHostPort(address) };
}

function newRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return registry;
}

export const responderCommand: Command<typeof responderOptions> = {
  name: 'responder',
  usage: 'kueuer responder --listen HOST:PORT --backend URL --queue NAME [options]\n       kueuer responder --backend URL --routes cluster [options]',
  summary: 'The front door: publishes every HTTP request to the queue and answers each client with the app\'s response.',
  options: responderOptions,
  async run(o) {
    if (o.routes === 'queue' && o.queue === undefined) {
      throw new ConfigError(['missing --queue (or KUEUER_QUEUE): required unless --routes cluster']);
    }
    const log = createLogger('responder', o.logLevel);
    const registry = newRegistry();
    const transport = await openBackend(o, log, 'responder');
    const drains: Array<() => Promise<void>> = [];
    let listening: string | undefined;
    if (o.queue !== undefined) {
      const { responder, address } = await startResponder({ ...o, queue: o.queue }, transport, registry, log);
      drains.push(() => responder.drain(o.drainTimeoutMs));
      listening = formatHostPort(address);
    }
    if (o.routes === 'cluster') {
      const routes = new RouteServer({ ...o, host: o.listen.host }, transport, registry, log);
      const services = await watchAllServices(log);
      const apply = (): void => void routes.apply(routesFromServices(services.list()));
      services.onChange(apply);
      apply();
      drains.push(async () => {
        await services.stop();
        await routes.drain(o.drainTimeoutMs);
      });
    }
    const { admin, address: adminAddress } = await serveAdmin(registry, log, o.adminListen, transport);
    log.info({ listen: listening, queue: o.queue, admin: adminAddress, routes: o.routes }, 'responder ready');
    exitOnSignal(log, async () => {
      await Promise.all(drains.map((d) => d()));
      await admin.close();
      await transport.close();
    });
  },
};

export const sidecarCommand: Command<typeof sidecarOptions> = {
  name: 'sidecar',
  usage: 'kueuer sidecar --app HOST:PORT --backend URL --queue NAME [--concurrency N] [options]',
  summary: 'Runs beside the app: takes requests from the queue, calls the app, publishes its response, then acks.',
  options: sidecarOptions,
  async run(o) {
    const log = createLogger('sidecar', o.logLevel);
    const registry = newRegistry();
    const transport = await openBackend(o, log, 'sidecar');
    const sidecar = await startSidecar(o, transport, registry, log);
    const { admin, address: adminAddress } = await serveAdmin(registry, log, o.adminListen, transport, sidecar.notReadyReason);
    log.info({ app: formatHostPort(o.app), admin: adminAddress, queue: o.queue, concurrency: o.concurrency }, 'sidecar ready');
    exitOnSignal(log, async () => {
      await sidecar.stop();
      await admin.close();
      await transport.close();
    });
  },
};

export const localCommand: Command<typeof localOptions> = {
  name: 'local',
  usage: 'kueuer local --listen HOST:PORT --app HOST:PORT [--backend URL] [--queue NAME] [--concurrency N] [options]',
  summary: 'The responder and a sidecar in one process, on the embedded in-memory broker by default.',
  options: localOptions,
  async run(o) {
    const log = createLogger('local', o.logLevel);
    const registry = newRegistry();
    const transport = await openBackend(o, log, 'local');
    const sidecar = await startSidecar(o, transport, registry, log.child({ part: 'sidecar' }));
    const { responder, address } = await startResponder(o, transport, registry, log.child({ part: 'responder' }));
    const { admin, address: adminAddress } = await serveAdmin(registry, log, o.adminListen, transport, sidecar.notReadyReason);
    log.info(
      { listen: formatHostPort(address), admin: adminAddress, app: formatHostPort(o.app), backend: transport.kind, queue: o.queue },
      'local stack ready',
    );
    exitOnSignal(log, async () => {
      await responder.drain(o.drainTimeoutMs);
      await sidecar.stop();
      await admin.close();
      await transport.close();
    });
  },
};

export const webhookCommand: Command<typeof webhookOptions> = {
  name: 'webhook',
  usage: 'kueuer webhook --listen HOST:PORT --tls-cert FILE --tls-key FILE [options]',
  summary: 'The admission webhook: injects the sidecar into annotated pods and points annotated Services at the responder.',
  options: webhookOptions,
  async run(o) {
    // Before anything touches the cluster: the TLS files, then a configuration and an API server that answers.
    checkTlsFiles({ cert: o.tlsCert, key: o.tlsKey });
    await checkKubernetesApi();
    const log = createLogger('webhook', o.logLevel);
    const registry = newRegistry();
    const nativeSidecars = o.nativeSidecars === 'auto' ? await detectNativeSidecars(log) : o.nativeSidecars === 'true';
    // Filled once the TLS files have loaded; until then no Service is admitted (the server is not listening).
    const cluster: { services?: ObjectSource<V1Service>; autoscaling?: AutoscalingReconciler } = {};
    const depth = o.backend && o.autoscaling !== 'off' ? await openQueueDepth(o.backend, log, o.rabbitmqManagementUrl) : null;
    const requestHeader = o.autoscaling === 'external' ? await readRequestHeaderAuth(log) : null;
    const app = buildWebhookServer({
      ...(requestHeader ? { clientCa: requestHeader.ca } : {}),
      ...(o.autoscaling !== 'off'
        ? {
            externalMetrics: {
              backlog: async (queue: string) => {
                if (!depth) throw new Error('the webhook has no --backend to read queue depths from');
                return (await depth.read(queue)).backlog;
              },
              isManagedQueue: (queue: string) => cluster.autoscaling?.plans().has(queue) ?? false,
              // Without a requestheader CA no client certificate verifies, so every metrics request is refused.
              allowedProxyNames: requestHeader?.allowedNames ?? [],
              authorize: await subjectAccessReviewer(),
            },
          }
        : {}),
      // Responder ports are handed out against every Service in the cluster.
      ports: { usedPorts: (except) => usedResponderPorts(cluster.services?.list() ?? [], except) },
      tls: { cert: o.tlsCert, key: o.tlsKey },
      config: injectionConfig(o, nativeSidecars, kueuerVersion()),
      registry,
      metrics: webhookMetrics(registry),
      log,
    });
    const services = await watchAllServices(log);
    cluster.services = services;
    const mirror = await runEndpointMirror(services, o.systemNamespace, o.responderService, log);
    if (o.autoscaling !== 'off') {
      cluster.autoscaling = await runAutoscaling({
        mode: o.autoscaling,
        depth,
        backlogUrl: o.backlogUrl,
        pollMs: o.autoscalingPollInterval,
        metrics: autoscalingMetrics(registry),
        log: log.child({ part: 'autoscaling' }),
      });
    }
    const address = await listen(app as unknown as Parameters<typeof listen>[0], o.listen);
    log.info({ listen: formatHostPort(address), nativeSidecars, image: o.sidecarImage, autoscaling: o.autoscaling, depthFrom: depth?.kind ?? null }, 'webhook ready');
    exitOnSignal(log, async () => {
      await app.close();
      await mirror.stop();
      await services.stop();
      await cluster.autoscaling?.stop();
      await depth?.close();
    });
  },
};

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const COMMANDS: Array<Command<any>> = [responderCommand, sidecarCommand, localCommand, webhookCommand];

