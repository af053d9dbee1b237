/**
 * The cluster seam (shared/kube/cluster.ts) and what became unit-testable
 * through a fake of it (test/helpers/fake-cluster.ts): every call bounded
 * and aborted, one retry on conflict, and the webhook's writes (responder
 * ports, certificates, KEDA's CA Secret, refusal Events) against an
 * in-memory apiserver that answers 409 to a stale write.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConfigurationOptions, RequestContext, V1Pod } from '@kubernetes/client-node';
import { pino } from 'pino';
import { describe, expect, it, vi } from 'vitest';
import { ApiTimeoutError, bounded, retryOnConflict, statusOf } from '../../shared/kube/cluster.js';
import { syncKedaCaSecret } from '../../webhook/certs/keda-ca-secret.js';
import { issueCa, issueClientCert } from '../../webhook/certs/issue.js';
import { startSelfIssuer } from '../../webhook/certs/self-issuer.js';
import { PortAllocations } from '../../webhook/admission/port-allocations.js';
import { clusterRefusalEvents, REFUSED_REASON } from '../../webhook/admission/refusal-events.js';
import { fakeCluster, FakeApiServer } from '../helpers/fake-cluster.js';

const silent = pino({ level: 'silent' });
const conflict = () => Object.assign(new Error('conflict'), { code: 409 });

describe('bounded calls', () => {
  it('a call that never answers rejects with ApiTimeoutError naming it, and its request is aborted', async () => {
    let signal: AbortSignal | undefined;
    const api = {
      readNamespacedSecret: (_p: unknown, options?: ConfigurationOptions) => {
        const ctx = { setSignal: (s: AbortSignal) => (signal = s), getSignal: () => undefined } as unknown as RequestContext;
        for (const m of options?.middleware ?? []) void m.pre(ctx).toPromise();
        return new Promise<never>(() => undefined);
      },
    };
    const started = Date.now();
    const call = bounded(api, 200, 'CoreV1Api').readNamespacedSecret({});
    await expect(call).rejects.toThrow(new ApiTimeoutError('CoreV1Api.readNamespacedSecret', 200));
    await expect(call).rejects.toThrow('CoreV1Api.readNamespacedSecret did not answer within 200 ms');
    expect(Date.now() - started).toBeLessThan(2000);
    expect(signal?.aborted).toBe(true);
  });

  it("keeps the caller's own call options and joins a shorter deadline set by an outer bound", async () => {
    const seen: string[] = [];
    let signal: AbortSignal | undefined;
    const api = {
      patch: (_p: unknown, options?: ConfigurationOptions) => {
        let current: AbortSignal | undefined;
        const ctx = {
          setSignal: (s: AbortSignal) => (current = s),
          getSignal: () => current,
          setHeaderParam: (k: string, v: string) => seen.push(`${k}: ${v}`),
        } as unknown as RequestContext;
        for (const m of options?.middleware ?? []) void m.pre(ctx).toPromise();
        signal = current;
        return new Promise<never>(() => undefined);
      },
    };
    const outer = bounded(bounded(api, 5000, 'inner'), 100, 'outer');
    const header: ConfigurationOptions = {
      middleware: [
        {
          pre: (ctx) => (ctx.setHeaderParam('Content-Type', 'application/merge-patch+json'), { toPromise: async () => ctx }) as never,
          post: (r) => ({ toPromise: async () => r }) as never,
        },
      ],
    };
    await expect(outer.patch({}, header)).rejects.toBeInstanceOf(ApiTimeoutError);
    expect(seen).toEqual(['Content-Type: application/merge-patch+json']);
    expect(signal?.aborted).toBe(true); // the 100 ms bound aborted the request the 5 s one also watches
  });

  it('statusOf reads the HTTP status of an API error, and nothing else', () => {
    expect(statusOf(Object.assign(new Error('x'), { code: 404 }))).toBe(404);
    expect(statusOf(Object.assign(new Error('x'), { code: 'ECONNREFUSED' }))).toBeUndefined();
    expect(statusOf(null)).toBeUndefined();
  });
});

describe('retryOnConflict', () => {
  it('runs again after a 409 up to its retries, then rethrows the last conflict', async () => {
    let tries = 0;
    await expect(
      retryOnConflict(
        async () => {
          tries++;
          throw conflict();
        },
        { retries: 3 },
      ),
    ).rejects.toThrow('conflict');
    expect(tries).toBe(4);
  });

  it('rethrows anything but a conflict at once, and returns the first success', async () => {
    let tries = 0;
    await expect(
      retryOnConflict(
        async () => {
          tries++;
          throw Object.assign(new Error('forbidden'), { code: 403 });
        },
        { retries: 3 },
      ),
    ).rejects.toThrow('forbidden');
    expect(tries).toBe(1);
    let n = 0;
    expect(await retryOnConflict(async () => (++n < 3 ? Promise.reject(conflict()) : 'done'), { retries: 5 })).toBe('done');
  });
});

const PORTS = { namespace: 'kueuer-system', name: 'kueuer-responder-ports' };

describe('responder port reservations through the seam', () => {
  it('two replicas reserving one port at once: one wins, the other sees it taken (the 409 is retried)', async () => {
    const api = new FakeApiServer();
    const cluster = fakeCluster(api);
    const a = new PortAllocations(cluster.clients.core, PORTS, () => []);
    const b = new PortAllocations(cluster.clients.core, PORTS, () => []);
    api.write('ConfigMap', PORTS.namespace, { metadata: { name: PORTS.name }, data: {} } as never, 'create');
    // b's write lands between a's read and a's write.
    let once = true;
    api.beforeWrite.set('replaceNamespacedConfigMap', () => {
      if (!once) return;
      once = false;
      api.write(
        'ConfigMap',
        PORTS.namespace,
        { ...api.read<Record<string, unknown>>('ConfigMap', PORTS.namespace, PORTS.name), data: { '20001': `shop/b at ${Date.now()}` } } as never,
        'replace',
      );
    });
    expect(await a.reserve('shop/a', 20001)).toBe(false);
    expect(a.reservedPorts('shop/a')).toEqual(new Set([20001]));
    expect(await b.reserve('shop/b', 20001)).toBe(true);
    expect(api.calls.filter((c) => c === 'readNamespacedConfigMap')).toHaveLength(3);
  });

  it('an apiserver that does not answer fails the reservation within the deadline, naming the call', async () => {
    const api = new FakeApiServer();
    api.held.add('readNamespacedConfigMap');
    const allocations = new PortAllocations(fakeCluster(api, 200).clients.core, PORTS, () => []);
    await expect(allocations.reserve('shop/a', 20001)).rejects.toThrow(
      'cannot reserve responder port 20001 in ConfigMap kueuer-system/kueuer-responder-ports: core.readNamespacedConfigMap did not answer within 200 ms',
    );
  });
});

describe('certificates through the seam', () => {
  const HOUR = 3_600_000;
  const webhookConfiguration = (api: FakeApiServer) =>
    api.write(
      'MutatingWebhookConfiguration',
      '',
      {
        metadata: { name: 'kueuer' },
        webhooks: [
          { name: 'pods.kueuer.io', clientConfig: {} },
          { name: 'services.kueuer.io', clientConfig: {} },
        ],
      } as never,
      'create',
    );
  const issuer = (api: FakeApiServer, dir: string) =>
    startSelfIssuer(fakeCluster(api, 5000), {
      secret: { namespace: 'kueuer-system', name: 'kueuer-webhook-tls' },
      targets: { webhookConfiguration: 'kueuer', metricsService: { namespace: 'kueuer-system', name: 'kueuer-metrics' } },
      policy: { caLifetimeMs: 24 * HOUR, servingLifetimeMs: 12 * HOUR, dnsNames: ['kueuer-metrics.kueuer-system.svc'] },
      dir,
      checkIntervalMs: HOUR,
      log: silent,
    });

  it('two replicas starting at once end with one certificate: the loser of the Secret write adopts the winner', async () => {
    const api = new FakeApiServer();
    webhookConfiguration(api);
    const [dirA, dirB] = [mkdtempSync(join(tmpdir(), 'kueuer-a-')), mkdtempSync(join(tmpdir(), 'kueuer-b-'))];
    const [a, b] = await Promise.all([issuer(api, dirA), issuer(api, dirB)]);
    a.stop();
    b.stop();
    const served = readFileSync(a.files.cert, 'utf8');
    expect(readFileSync(b.files.cert, 'utf8')).toBe(served);
    const secret = api.read<{ data: Record<string, string> }>('Secret', 'kueuer-system', 'kueuer-webhook-tls');
    expect(Buffer.from(secret.data['tls.crt']!, 'base64').toString('utf8')).toBe(served);
    const config = api.read<{ webhooks: Array<{ clientConfig: { caBundle?: string } }> }>('MutatingWebhookConfiguration', '', 'kueuer');
    const bundle = Buffer.from(secret.data['ca.crt']!, 'base64').toString('base64');
    expect(config.webhooks.map((w) => w.clientConfig.caBundle)).toEqual([bundle, bundle]);
  }, 60_000);

  it("KEDA's CA Secret: a write that loses to another replica is read and written again", async () => {
    const api = new FakeApiServer();
    const ref = { namespace: 'keda', name: 'kueuer-backlog-tls' };
    const ca = await issueCa('test-ca', HOUR);
    const client = await issueClientCert(ca, 'keda-kueuer-backlog', HOUR);
    let once = true;
    api.beforeWrite.set('createNamespacedSecret', () => {
      if (!once) return;
      once = false;
      api.write('Secret', 'keda', { metadata: { name: ref.name }, data: { other: 'eA==' } } as never, 'create');
    });
    expect(await syncKedaCaSecret(fakeCluster(api).clients.core, ref, ca.cert, async () => client)).toBe('updated');
    const stored = api.read<{ data: Record<string, string> }>('Secret', 'keda', ref.name);
    expect(stored.data.other).toBe('eA==');
    expect(Buffer.from(stored.data['ca.crt']!, 'base64').toString('utf8')).toBe(ca.cert);
  }, 30_000);
});

describe('refusal Events through the seam', () => {
  const pod: V1Pod = {
    metadata: {
      name: 'web-7d9f8-abcde',
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web-7d9f8', uid: 'rs', controller: true }],
      labels: { 'pod-template-hash': '7d9f8' },
    },
  };

  it('records a refused pod on its Deployment, found by name for the uid `kubectl describe` matches', async () => {
    const api = new FakeApiServer();
    api.write('Deployment', 'shop', { metadata: { name: 'web', uid: 'deploy-uid' } } as never, 'create');
    clusterRefusalEvents(fakeCluster(api), silent)(pod, 'shop', 'refused:\nbad annotation');
    await vi.waitFor(() => expect(api.events).toHaveLength(1));
    expect(api.events[0]).toMatchObject({
      reason: REFUSED_REASON,
      type: 'Warning',
      message: 'refused: bad annotation',
      involvedObject: { kind: 'Deployment', name: 'web', namespace: 'shop', uid: 'deploy-uid' },
    });
  });

  it('an Events API that does not answer is logged within the deadline, never awaited by admission', async () => {
    const api = new FakeApiServer();
    api.write('Deployment', 'shop', { metadata: { name: 'web', uid: 'deploy-uid' } } as never, 'create');
    api.held.add('createNamespacedEvent');
    const warnings: string[] = [];
    const log = pino({ level: 'warn' }, { write: (line: string) => void warnings.push(line) });
    const started = Date.now();
    clusterRefusalEvents(fakeCluster(api, 200), log)(pod, 'shop', 'refused');
    expect(Date.now() - started).toBeLessThan(100);
    await vi.waitFor(() => expect(warnings.join('')).toContain('core.createNamespacedEvent did not answer within 200 ms'));
  });
});
