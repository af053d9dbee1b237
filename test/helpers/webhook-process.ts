/** The real `kueuer webhook` process against a test control plane, and the shipped webhook configuration pointed at it. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadAllYaml } from '@kubernetes/client-node';
import type { ControlPlane, KubeJson } from './control-plane.js';
import { freePort } from './net.js';
import { msgIs, spawnKueuer, type KueuerProcess } from './processes.js';
import { generateCerts } from './webhook.js';

const root = join(import.meta.dirname, '..', '..');

export interface WebhookProcess {
  process: KueuerProcess;
  certs: ReturnType<typeof generateCerts>;
  /** manifests/base/webhook/mutating-webhook-configuration.yaml with a local url and this process's caBundle. */
  configuration: KubeJson;
}

/** Starts `kueuer webhook --autoscaling off` with a fresh certificate (for `sans`) and waits until it is ready. */
export async function startWebhookProcess(cp: ControlPlane, sans?: string[]): Promise<WebhookProcess> {
  const certs = generateCerts(undefined, sans);
  const port = await freePort();
  const process = spawnKueuer(['webhook', '--listen', `127.0.0.1:${port}`, '--tls-cert', certs.cert, '--tls-key', certs.key, '--autoscaling', 'off'], {
    KUBECONFIG: cp.kubeconfig,
  });
  await process.waitForLog(msgIs('webhook ready'), 30_000);
  const [configuration] = loadAllYaml(readFileSync(join(root, 'manifests/base/webhook/mutating-webhook-configuration.yaml'), 'utf8')) as KubeJson[];
  for (const w of configuration!.webhooks) w.clientConfig = { url: `https://127.0.0.1:${port}/mutate`, caBundle: certs.ca.toString('base64') };
  return { process, certs, configuration: configuration! };
}
