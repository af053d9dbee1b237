/**
 * For tests that run `kueuer webhook --cert-source self` on this machine
 * against a real kube-apiserver: the certificates of a PEM bundle, the
 * certificate a listener serves for the webhook Service's name, and a runner
 * that starts webhook processes (as a ServiceAccount's kubeconfig) and stops
 * them all.
 */
import { X509Certificate } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { dumpYaml, loadAllYaml } from '@kubernetes/client-node';
import type { ControlPlane, KubeJson } from './control-plane.js';
import { msgIs, spawnKueuer, type KueuerProcess } from './processes.js';

export const WEBHOOK_SERVICE_NAME = 'kueuer-webhook.kueuer-system.svc';
const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** The certificates in a base64 PEM bundle (a caBundle, a Secret's ca.crt). */
export function certificatesIn(base64: string | undefined): X509Certificate[] {
  const pem = Buffer.from(base64 ?? '', 'base64').toString('utf8');
  return (pem.match(PEM_CERT) ?? []).map((c) => new X509Certificate(c));
}

/** Their SHA-256 fingerprints, in bundle order. */
export const bundleFingerprints = (base64: string | undefined): string[] => certificatesIn(base64).map((c) => c.fingerprint256);

/** The certificate a TLS server presents for the webhook Service's name. */
export function servedCertificateOf(host: string, port: number): Promise<X509Certificate> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host, port, servername: WEBHOOK_SERVICE_NAME, rejectUnauthorized: false }, () => {
      const cert = socket.getPeerCertificate();
      socket.end();
      resolve(new X509Certificate(cert.raw));
    });
    socket.on('error', reject);
  });
}

/** Starts `kueuer webhook --cert-source self` processes listening on `listen` (host:port) with `kubeconfig`; stopAll ends them. */
export function selfIssuedWebhooks(kubeconfig: () => string) {
  const running: KueuerProcess[] = [];
  return {
    async start(listen: string, args: string[]): Promise<KueuerProcess> {
      const certDir = mkdtempSync(join(tmpdir(), 'kueuer-issued-'));
      const webhook = spawnKueuer(
        ['webhook', '--cert-source', 'self', '--cert-dir', certDir, '--listen', listen, '--sidecar-image', 'ghcr.io/kueuer/kueuer:e2e', ...args],
        { KUBECONFIG: kubeconfig() },
      );
      running.push(webhook);
      await webhook.waitForLog(msgIs('webhook ready'), 60_000);
      return webhook;
    },
    async stopAll(): Promise<void> {
      for (const w of running.splice(0)) {
        w.child.kill('SIGTERM');
        const killed = setTimeout(() => w.child.kill('SIGKILL'), 10_000);
        await w.exited;
        clearTimeout(killed);
      }
    },
  };
}

/**
 * Applies a kustomization as `kubectl apply -k` renders it, but the objects of `leftOut` kinds (the Deployments:
 * no kubelet runs in the test cluster, the webhook runs on this machine). Returns what was applied; throws on any error.
 */
export function applyRendered(cp: ControlPlane, dir: string, leftOut: readonly string[]): KubeJson[] {
  const rendered = cp.kubectl(['kustomize', dir]);
  if (rendered.code !== 0 || rendered.stderr !== '') throw new Error(`kubectl kustomize ${dir}: ${rendered.stderr}`);
  const objects = (loadAllYaml(rendered.stdout) as KubeJson[]).filter((o) => !leftOut.includes(o.kind as string));
  const applied = cp.apply(objects.map((o) => dumpYaml(o)).join('---\n'));
  if (applied.code !== 0 || applied.stderr !== '') throw new Error(`kubectl apply of ${dir}: ${applied.stderr}`);
  return objects;
}
