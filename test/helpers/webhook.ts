/** Runs the webhook's HTTPS server in the test process with a fresh CA and certificate. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import type { InjectionConfig } from '../../webhook/admission/pod-injection.js';
import { defaultWebhookSettings, injectionConfig } from '../../webhook/config.js';
import { webhookMetrics } from '../../webhook/metrics.js';
import { buildWebhookServer } from '../../webhook/server.js';
import { silentLog } from './stack.js';
import type { V1ObjectMeta, V1Service } from '@kubernetes/client-node';
import { JobWorkloads } from '../../webhook/admission/workload-queue.js';
import { StaticObjectSource } from '../../shared/kube/object-source.js';
import { usedResponderPorts } from '../../shared/service-routes.js';

const script = join(import.meta.dirname, '..', '..', 'scripts', 'gen-certs.sh');

/** `sans`: the certificate's names; the aggregation layer checks the Service's DNS name (`kueuer-webhook.kueuer-system.svc`). */
export function generateCerts(
  dir = mkdtempSync(join(tmpdir(), 'kueuer-certs-')),
  sans = ['127.0.0.1', 'localhost'],
): { dir: string; ca: Buffer; cert: string; key: string } {
  execFileSync('bash', [script, dir, ...sans], { stdio: 'ignore' });
  return { dir, ca: readFileSync(join(dir, 'ca.crt')), cert: join(dir, 'tls.crt'), key: join(dir, 'tls.key') };
}

/** The webhook's real defaults, with a fixed image and version so golden files do not change with releases. */
export const testInjectionConfig: InjectionConfig = injectionConfig(
  defaultWebhookSettings(['--sidecar-image', 'ghcr.io/kueuer/kueuer:test']),
  true,
  '0.1.0-test',
);

export interface RunningWebhook {
  url: string;
  ca: Buffer;
  certs: ReturnType<typeof generateCerts>;
  registry: Registry;
  post(body: unknown, contentType?: string): Promise<{ status: number; json: Record<string, unknown> }>;
  close(): Promise<void>;
}

/** Services the webhook sees in the "cluster" when it hands out responder ports. */
export const clusterServices = new StaticObjectSource<V1Service>();

/** Jobs the webhook reads (metadata, by namespace and name) to name the queue of Job-owned pods. */
export const clusterJobs = new Map<string, V1ObjectMeta>();

export async function startWebhook(config: InjectionConfig = testInjectionConfig): Promise<RunningWebhook> {
  const certs = generateCerts();
  const registry = new Registry();
  const app = buildWebhookServer({
    ports: { usedPorts: (except) => usedResponderPorts(clusterServices.list(), except) },
    jobs: new JobWorkloads(async (namespace, name) => {
      const job = clusterJobs.get(`${namespace}/${name}`);
      if (!job) throw Object.assign(new Error(`jobs.batch "${name}" not found`), { code: 404 });
      return job;
    }),
    // No cluster here: refused pods raise no Event (test/integration/refusal-events.test.ts covers them).
    refusalEvents: () => undefined,
    tls: { cert: certs.cert, key: certs.key },
    config,
    registry,
    metrics: webhookMetrics(registry),
    log: silentLog,
    tlsPollMs: 100,
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const port = (app.server.address() as { port: number }).port;
  const url = `https://127.0.0.1:${port}`;
  return {
    url,
    ca: certs.ca,
    certs,
    registry,
    post: (body, contentType = 'application/json') => httpsJson(url, '/mutate', certs.ca, typeof body === 'string' ? body : JSON.stringify(body), contentType),
    close: () => app.close(),
  };
}

export function httpsJson(
  base: string,
  path: string,
  ca: Buffer,
  body?: string,
  contentType = 'application/json',
): Promise<{ status: number; json: Record<string, unknown>; peerFingerprint?: string }> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: url.hostname,
        port: url.port,
        path,
        method: body === undefined ? 'GET' : 'POST',
        ca,
        agent: false,
        headers: body === undefined ? {} : { 'content-type': contentType },
      },
      (res) => {
        const peerFingerprint = (res.socket as import('node:tls').TLSSocket).getPeerCertificate?.().fingerprint256;
        let data = '';
        res.on('data', (c) => (data += c));
        res.on('end', () => {
          let json: Record<string, unknown> = {};
          try {
            json = JSON.parse(data) as Record<string, unknown>;
          } catch {
            json = { raw: data };
          }
          resolve({ status: res.statusCode ?? 0, json, peerFingerprint });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** `oldObject`: the stored object of an UPDATE (the operation defaults to UPDATE when it is given). */
export function review(
  object: unknown,
  options: { kind?: string; namespace?: string; uid?: string; operation?: string; oldObject?: unknown } = {},
): Record<string, unknown> {
  const kind = options.kind ?? 'Pod';
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: options.uid ?? 'e911857d-c318-11e8-bbad-025000000001',
      kind: { group: '', version: 'v1', kind },
      resource: { group: '', version: 'v1', resource: kind === 'Pod' ? 'pods' : 'services' },
      namespace: options.namespace ?? 'shop',
      operation: options.operation ?? (options.oldObject === undefined ? 'CREATE' : 'UPDATE'),
      // As the apiserver sends it (a UUID uid and the user), so the webhook may reserve ports and record Events.
      userInfo: { username: 'kubernetes-admin', groups: ['system:masters', 'system:authenticated'] },
      object,
      ...(options.oldObject === undefined ? {} : { oldObject: options.oldObject }),
      dryRun: false,
    },
  };
}
