/**
 * The admission part of `npm run bench`: the webhook in its own process, a
 * fixed request rate of pod AdmissionReviews against the same server's empty
 * /healthz as the baseline, client-side and server-side percentiles.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Agent } from 'undici';

/** A Deployment's pod as the apiserver sends it: generateName, owner, two containers, probes, volumes. */
function admissionReviewBody(i: number): string {
  return JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: `bench-${i}`,
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      namespace: 'shop',
      operation: 'CREATE',
      object: {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: {
          generateName: 'web-7d9f8b6c5d-',
          labels: { app: 'web', 'pod-template-hash': '7d9f8b6c5d', 'kueuer.io/inject': 'true' },
          annotations: { 'kueuer.io/concurrency': '4' },
          ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web-7d9f8b6c5d', uid: 'u', controller: true }],
        },
        spec: {
          containers: [
            {
              name: 'app',
              image: 'example.com/web:1.2.3',
              ports: [{ containerPort: 8080, name: 'http' }],
              env: Array.from({ length: 10 }, (_, k) => ({ name: `VAR_${k}`, value: `value-${k}` })),
              readinessProbe: { httpGet: { path: '/ready', port: 'http' } },
              volumeMounts: [{ name: 'config', mountPath: '/etc/web' }],
            },
            { name: 'log-shipper', image: 'example.com/shipper:4' },
          ],
          volumes: [{ name: 'config', configMap: { name: 'web-config' } }],
        },
      },
    },
  });
}

interface RateResult {
  label: string;
  rps: number;
  count: number;
  errors: number;
  p50: number;
  p99: number;
}

/** Open-loop load: one request every 1/rps seconds whatever the answers do, as an apiserver sends them. */
async function atRate(
  label: string,
  dispatcher: Agent,
  url: string,
  method: 'GET' | 'POST',
  body: (i: number) => string | undefined,
  rps: number,
  durationS: number,
): Promise<RateResult> {
  const latencies: number[] = [];
  let errors = 0;
  const total = rps * durationS;
  const started = performance.now();
  const inflight: Array<Promise<void>> = [];
  for (let i = 0; i < total; i++) {
    const due = started + (i * 1000) / rps;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const b = body(i);
    const t0 = performance.now();
    inflight.push(
      (async () => {
        try {
          const res = await fetchWith(dispatcher, url, method, b);
          if (res !== 200) errors++;
          else latencies.push(performance.now() - t0);
        } catch {
          errors++;
        }
      })(),
    );
  }
  await Promise.all(inflight);
  latencies.sort((a, b) => a - b);
  const pct = (p: number): number => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? NaN;
  return { label, rps, count: latencies.length, errors, p50: pct(0.5), p99: pct(0.99) };
}

async function fetchWith(dispatcher: Agent, url: string, method: 'GET' | 'POST', body: string | undefined): Promise<number> {
  const res = await dispatcher.request({
    origin: new URL(url).origin,
    path: new URL(url).pathname,
    method,
    body,
    headers: body ? { 'content-type': 'application/json' } : {},
  });
  await res.body.arrayBuffer();
  return res.statusCode;
}

/** Cumulative buckets of the webhook's Pod admission histogram, from its /metrics. */
async function podAdmissionBuckets(dispatcher: Agent, base: string): Promise<Array<[number, number]>> {
  const res = await dispatcher.request({ origin: base, path: '/metrics', method: 'GET' });
  const text = await res.body.text();
  const out: Array<[number, number]> = [];
  for (const m of text.matchAll(/^kueuer_webhook_admission_duration_seconds_bucket\{le="([^"]+)",kind="Pod"\} (\d+)$/gm)) {
    out.push([m[1] === '+Inf' ? Infinity : Number(m[1]), Number(m[2])]);
  }
  return out;
}

/** The upper bound of the bucket holding quantile q. */
function quantileFromBuckets(buckets: Array<[number, number]>, q: number): number {
  const total = buckets.at(-1)?.[1] ?? 0;
  return buckets.find(([, n]) => n >= q * total)?.[0] ?? NaN;
}

export async function benchAdmission(root: string, seconds: number, children: ChildProcess[]): Promise<string[]> {
  const certs = join(root, '.cache', 'bench-certs');
  execFileSync('bash', [join(root, 'scripts/gen-certs.sh'), certs, '127.0.0.1'], { stdio: 'ignore' });
  // The webhook runs in its own process, as in a cluster; the load generator is this one.
  const child = spawn(process.execPath, [join(root, 'dist/scripts/bench/bench-webhook-server.js'), certs], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
    child.once('exit', (code) => reject(new Error(`the webhook bench server exited with ${code}`)));
  });
  const dispatcher = new Agent({ connect: { ca: readFileSync(join(certs, 'ca.crt')) }, connections: 8 });
  const base = `https://127.0.0.1:${port}`;
  const rps = 200;
  const secs = Math.max(5, seconds);
  await atRate('warm-up', dispatcher, `${base}/mutate`, 'POST', admissionReviewBody, rps, 2);
  const healthz = await atRate('HTTPS /healthz (baseline)', dispatcher, `${base}/healthz`, 'GET', () => undefined, rps, secs);
  const before = await podAdmissionBuckets(dispatcher, base);
  const mutate = await atRate('POST /mutate (pod injection)', dispatcher, `${base}/mutate`, 'POST', admissionReviewBody, rps, secs);
  const after = await podAdmissionBuckets(dispatcher, base);
  const serverP99 = quantileFromBuckets(
    after.map(([le, n], i) => [le, n - (before[i]?.[1] ?? 0)]),
    0.99,
  );
  await dispatcher.close();
  child.kill('SIGKILL');
  const lines = ['| endpoint | rate | answered | errors | p50 ms | p99 ms | p99 vs baseline |', '|---|---|---|---|---|---|---|'];
  for (const r of [healthz, mutate]) {
    console.log(`${r.label.padEnd(32)} ${r.rps} req/s  p50 ${r.p50.toFixed(3)} ms  p99 ${r.p99.toFixed(3)} ms  errors ${r.errors}`);
    lines.push(
      `| ${r.label} | ${r.rps}/s | ${r.count} | ${r.errors} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${r === healthz ? '–' : `${(r.p99 / healthz.p99).toFixed(2)}×`} |`,
    );
  }
  lines.push(
    '',
    `- Admission p99 at ${rps} req/s, as the client sees it: ${mutate.p99.toFixed(2)} ms against the same server's empty /healthz at ${healthz.p99.toFixed(2)} ms: ${(mutate.p99 / healthz.p99).toFixed(2)}× (target ≤ 1.25×: ${
      mutate.p99 <= 1.25 * healthz.p99 ? '**met**' : `**missed** by ${(mutate.p99 / healthz.p99 - 1.25).toFixed(2)}×`
    }).`,
    `- Inside the webhook (first byte in to answer out, JSON parsing included, from kueuer_webhook_admission_duration_seconds): p99 ≤ ${(serverP99 * 1000).toFixed(2)} ms.`,
  );
  console.log(`webhook-side p99 ≤ ${(serverP99 * 1000).toFixed(2)} ms`);
  return lines;
}
