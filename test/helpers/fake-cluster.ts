/**
 * A fake of the cluster seam (shared/kube/cluster.ts) for unit tests: an
 * in-memory apiserver for the few objects the webhook writes (ConfigMaps,
 * Secrets, the MutatingWebhookConfiguration, Events, Deployments), with
 * resourceVersions and 409 on a stale write, as the real one answers. Its
 * clients go through the seam's own `bounded`, so a call the fake holds
 * (`hold`) times out exactly as a real one would.
 */
import type { CoreV1Event, V1Deployment, V1MutatingWebhookConfiguration } from '@kubernetes/client-node';
import { bounded, type Cluster, type KubeClients } from '../../shared/kube/cluster.js';

type Stored = { metadata?: { name?: string; namespace?: string; resourceVersion?: string } };

const apiError = (code: number, message: string) => Object.assign(new Error(`HTTP ${code}: ${message}`), { code });

export class FakeApiServer {
  private version = 0;
  readonly objects = new Map<string, Stored>();
  readonly events: CoreV1Event[] = [];
  /** Calls by method name; a method named in `held` never answers. */
  readonly calls: string[] = [];
  readonly held = new Set<string>();
  /** Runs before a write of this method is applied (e.g. another replica writing first). */
  readonly beforeWrite = new Map<string, () => void>();

  private answer<T>(method: string, work: () => T): Promise<T> {
    this.calls.push(method);
    if (this.held.has(method)) return new Promise<T>(() => undefined);
    return new Promise<T>((resolve) => resolve(work()));
  }

  read<T = Stored>(kind: string, namespace: string, name: string): T {
    const found = this.objects.get(`${kind}/${namespace}/${name}`);
    if (!found) throw apiError(404, `${kind} "${name}" not found`);
    return structuredClone(found) as T;
  }

  /** Stores `body` as the apiserver would: create refuses an existing object, replace a stale resourceVersion. */
  write<T extends Stored>(kind: string, namespace: string, body: T, mode: 'create' | 'replace'): T {
    const name = body.metadata?.name ?? '';
    const key = `${kind}/${namespace}/${name}`;
    const current = this.objects.get(key);
    if (mode === 'create' && current) throw apiError(409, `${kind} "${name}" already exists`);
    if (mode === 'replace' && !current) throw apiError(404, `${kind} "${name}" not found`);
    if (mode === 'replace' && body.metadata?.resourceVersion !== current?.metadata?.resourceVersion) {
      throw apiError(409, `Operation cannot be fulfilled on ${kind} "${name}": the object has been modified`);
    }
    const stored = structuredClone({ ...body, metadata: { ...body.metadata, namespace, resourceVersion: String(++this.version) } });
    this.objects.set(key, stored);
    return structuredClone(stored);
  }

  private writing<T extends Stored>(method: string, kind: string, namespace: string, body: T, mode: 'create' | 'replace'): Promise<T> {
    return this.answer(method, () => {
      this.beforeWrite.get(method)?.();
      return this.write(kind, namespace, body, mode);
    });
  }

  readonly core = {
    readNamespacedConfigMap: (p: { namespace: string; name: string }) =>
      this.answer('readNamespacedConfigMap', () => this.read('ConfigMap', p.namespace, p.name)),
    createNamespacedConfigMap: (p: { namespace: string; body: Stored }) =>
      this.writing('createNamespacedConfigMap', 'ConfigMap', p.namespace, p.body, 'create'),
    replaceNamespacedConfigMap: (p: { namespace: string; body: Stored }) =>
      this.writing('replaceNamespacedConfigMap', 'ConfigMap', p.namespace, p.body, 'replace'),
    readNamespacedSecret: (p: { namespace: string; name: string }) => this.answer('readNamespacedSecret', () => this.read('Secret', p.namespace, p.name)),
    createNamespacedSecret: (p: { namespace: string; body: Stored }) => this.writing('createNamespacedSecret', 'Secret', p.namespace, p.body, 'create'),
    replaceNamespacedSecret: (p: { namespace: string; body: Stored }) => this.writing('replaceNamespacedSecret', 'Secret', p.namespace, p.body, 'replace'),
    createNamespacedEvent: (p: { namespace: string; body: CoreV1Event }) =>
      this.answer('createNamespacedEvent', () => {
        this.events.push(structuredClone(p.body));
        return p.body;
      }),
  };

  readonly apps = {
    listNamespacedDeployment: (p: { namespace: string; fieldSelector?: string }) =>
      this.answer('listNamespacedDeployment', () => {
        const name = /^metadata\.name=(.*)$/.exec(p.fieldSelector ?? '')?.[1];
        const items = [...this.objects.entries()]
          .filter(([key]) => key.startsWith(`Deployment/${p.namespace}/`) && (name === undefined || key.endsWith(`/${name}`)))
          .map(([, o]) => structuredClone(o) as V1Deployment);
        return { items };
      }),
  };

  readonly admission = {
    readMutatingWebhookConfiguration: (p: { name: string }) =>
      this.answer('readMutatingWebhookConfiguration', () => this.read<V1MutatingWebhookConfiguration>('MutatingWebhookConfiguration', '', p.name)),
    replaceMutatingWebhookConfiguration: (p: { name: string; body: Stored }) =>
      this.writing('replaceMutatingWebhookConfiguration', 'MutatingWebhookConfiguration', '', p.body, 'replace'),
  };

  readonly registration = {
    readAPIService: (p: { name: string }) => this.answer('readAPIService', () => this.read('APIService', '', p.name)),
  };
}

/** A Cluster answering from `server`, each call bounded by `timeoutMs` as the real one's are. */
export function fakeCluster(server: FakeApiServer, timeoutMs = 1000): Cluster {
  const absent = (name: string) => new Proxy({}, { get: () => () => Promise.reject(new Error(`the fake cluster has no ${name} client`)) });
  const clients = (ms: number): KubeClients => {
    const all: Record<keyof KubeClients, object> = {
      core: server.core,
      apps: server.apps,
      admission: server.admission,
      registration: server.registration,
      batch: absent('batch'),
      discovery: absent('discovery'),
      coordination: absent('coordination'),
      authorization: absent('authorization'),
      autoscaling: absent('autoscaling'),
      custom: absent('custom'),
      version: absent('version'),
    };
    return Object.fromEntries(Object.entries(all).map(([k, api]) => [k, bounded(api, ms, k)])) as unknown as KubeClients;
  };
  return {
    server: 'https://fake-apiserver',
    configured: true,
    timeoutMs,
    clients: clients(timeoutMs),
    within: clients,
    informer: () => {
      throw new Error('the fake cluster has no informers');
    },
    microTime: (ms) => new Date(ms) as never,
    mergePatch: {},
  };
}
