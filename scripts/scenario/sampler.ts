/**
 * Every second, what the cluster says about the app (all from the apiserver,
 * as `kubectl get` would read it): the Deployment's ready and desired
 * replicas, the HPA's desired replicas, Kueuer's backlog metric
 * (external.metrics.k8s.io `kueuer_queue_backlog`, Kueuer's runs only), the
 * app pods' CPU (metrics.k8s.io, from metrics-server), and the machine's busy
 * CPU from /proc/stat. A read that fails or times out is recorded as null
 * (the sample is kept), except the Deployment's counts, which keep the last
 * value read.
 */
import { readFileSync } from 'node:fs';
import https from 'node:https';
import { join } from 'node:path';
import type { Sample } from './results.js';

export interface ApiAccess {
  server: string;
  certs: string;
}

/** GET of an apiserver path as the admin user; null on any failure (within timeoutMs). */
export function apiGetter(access: ApiAccess, timeoutMs = 900): (path: string) => Promise<Record<string, unknown> | null> {
  const agent = new https.Agent({
    ca: readFileSync(join(access.certs, 'ca.crt')),
    cert: readFileSync(join(access.certs, 'admin.crt')),
    key: readFileSync(join(access.certs, 'admin.key')),
    keepAlive: true,
  });
  return (path) =>
    new Promise((resolve) => {
      const req = https.get(`${access.server}${path}`, { agent, timeout: timeoutMs }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => {
          if (res.statusCode !== 200) return resolve(null);
          try {
            resolve(JSON.parse(body) as Record<string, unknown>);
          } catch {
            resolve(null);
          }
        });
        res.on('error', () => resolve(null));
      });
      req.on('timeout', () => req.destroy());
      req.on('error', () => resolve(null));
    });
}

/** A Kubernetes quantity ("12345678n", "15m", "2", "1500m") as a number of units (CPU: cores). */
export function parseQuantity(q: string): number {
  const m = /^([0-9.]+)([numkMG]?)$/.exec(q.trim());
  if (!m) return Number.NaN;
  const scale: Record<string, number> = { n: 1e-9, u: 1e-6, m: 1e-3, '': 1, k: 1e3, M: 1e6, G: 1e9 };
  return Number(m[1]) * scale[m[2]!]!;
}

/** Busy and total jiffies of all CPUs from /proc/stat's first line. */
function cpuTimes(): { busy: number; total: number } {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = fields.reduce((a, b) => a + b, 0);
  const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
  return { busy: total - idle, total };
}

export interface SamplerTarget {
  namespace: string;
  deployment: string;
  hpa: string;
  /** The queue for kueuer_queue_backlog (`<namespace>.<queue>`); none without Kueuer. */
  queue?: string;
}

interface DeploymentJson {
  spec?: { replicas?: number };
  status?: { readyReplicas?: number };
}
interface HpaJson {
  status?: { desiredReplicas?: number };
}
interface MetricListJson<T> {
  items?: T[];
}
interface PodMetricsJson {
  containers: Array<{ usage: { cpu: string } }>;
}

/** Samples once a second from startMs until stop() is called; stop() resolves every sample taken. */
export function startSampler(access: ApiAccess, target: SamplerTarget, startMs: number): { stop(): Promise<Sample[]> } {
  const get = apiGetter(access);
  const samples: Sample[] = [];
  let running = true;
  const ns = target.namespace;
  const backlogPath = target.queue
    ? `/apis/external.metrics.k8s.io/v1beta1/namespaces/${ns}/kueuer_queue_backlog?labelSelector=${encodeURIComponent(`queue=${target.queue}`)}`
    : null;
  const loop = (async () => {
    let cpu = cpuTimes();
    let next = Date.now();
    while (running) {
      const t = (Date.now() - startMs) / 1000;
      const [deployJson, hpaJson, backlogJson, podMetricsJson] = await Promise.all([
        get(`/apis/apps/v1/namespaces/${ns}/deployments/${target.deployment}`),
        get(`/apis/autoscaling/v2/namespaces/${ns}/horizontalpodautoscalers/${target.hpa}`),
        backlogPath ? get(backlogPath) : Promise.resolve(null),
        get(`/apis/metrics.k8s.io/v1beta1/namespaces/${ns}/pods?labelSelector=${encodeURIComponent(`app=${target.deployment}`)}`),
      ]);
      const deploy = deployJson as DeploymentJson | null;
      const hpa = hpaJson as HpaJson | null;
      const backlogItem = (backlogJson as MetricListJson<{ value: string }> | null)?.items?.[0];
      const podMetrics = (podMetricsJson as MetricListJson<PodMetricsJson> | null)?.items;
      const now = cpuTimes();
      const dTotal = now.total - cpu.total;
      const dBusy = now.busy - cpu.busy;
      cpu = now;
      samples.push({
        t: Math.round(t * 10) / 10,
        // A failed read keeps the last known counts (a loaded apiserver sometimes misses the 900 ms).
        ready: deploy ? (deploy.status?.readyReplicas ?? 0) : (samples.at(-1)?.ready ?? 0),
        replicas: deploy ? (deploy.spec?.replicas ?? 0) : (samples.at(-1)?.replicas ?? 0),
        desired: hpa?.status?.desiredReplicas ?? null,
        backlog: backlogItem ? parseQuantity(backlogItem.value) : null,
        cpuMillis: podMetrics
          ? Math.round(1000 * podMetrics.flatMap((p) => p.containers.map((c) => parseQuantity(c.usage.cpu))).reduce((a, b) => a + b, 0))
          : null,
        hostCpuPercent: dTotal > 0 ? Math.round((100 * dBusy) / dTotal) : null,
      });
      next += 1000;
      await new Promise((r) => setTimeout(r, Math.max(0, next - Date.now())));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return samples;
    },
  };
}
