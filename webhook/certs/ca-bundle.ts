/**
 * Puts the CA bundle into everything that calls the webhook over TLS: each
 * webhook of the MutatingWebhookConfiguration and, when it is Kueuer's, the
 * external metrics APIService. An object already carrying the bundle is not
 * written; a write uses the resourceVersion it read (replace), so a
 * concurrent change is retried, never overwritten.
 */
import type { AdmissionregistrationV1Api, ApiregistrationV1Api } from '@kubernetes/client-node';
import { retryOnConflict, statusOf } from '../../shared/kube/cluster.js';
import { decideMetricsOwner, EXTERNAL_METRICS_APISERVICE, type ServiceRef } from '../autoscaling/metrics-owner.js';

export interface CaBundleTargets {
  webhookConfiguration: string;
  /** The APIService is patched only while it points at this Service. */
  metricsService: ServiceRef;
}

const CONFLICT_RETRIES = 5;

/** `attempt` (read, then replace with the version read), again after a conflict; a failure names `what`. */
async function setWithRetry(what: string, attempt: () => Promise<boolean>): Promise<boolean> {
  try {
    return await retryOnConflict(attempt, { retries: CONFLICT_RETRIES });
  } catch (err) {
    throw new Error(`cannot set the caBundle of ${what}: ${(err as Error).message}`, { cause: err });
  }
}

/** Returns whether it wrote. A missing configuration is an error: the apiserver cannot call the webhook without it. */
async function patchWebhookConfiguration(api: AdmissionregistrationV1Api, name: string, caBundle: string): Promise<boolean> {
  return setWithRetry(`MutatingWebhookConfiguration ${name}`, async () => {
    const config = await api.readMutatingWebhookConfiguration({ name });
    const webhooks = config.webhooks ?? [];
    if (webhooks.every((w) => w.clientConfig.caBundle === caBundle)) return false;
    for (const w of webhooks) w.clientConfig.caBundle = caBundle;
    await api.replaceMutatingWebhookConfiguration({ name, body: config });
    return true;
  });
}

/** Returns whether it wrote. No APIService (keda or prometheus-adapter mode), or another owner's: left alone. */
async function patchApiService(api: ApiregistrationV1Api, owner: ServiceRef, caBundle: string): Promise<boolean> {
  return setWithRetry(`APIService ${EXTERNAL_METRICS_APISERVICE}`, async () => {
    let apiService;
    try {
      apiService = await api.readAPIService({ name: EXTERNAL_METRICS_APISERVICE });
    } catch (err) {
      if (statusOf(err) === 404) return false;
      throw err;
    }
    if (decideMetricsOwner(apiService, owner).kind !== 'ours' || !apiService.spec) return false;
    if (apiService.spec.caBundle === caBundle && !apiService.spec.insecureSkipTLSVerify) return false;
    apiService.spec.caBundle = caBundle;
    delete apiService.spec.insecureSkipTLSVerify;
    await api.replaceAPIService({ name: EXTERNAL_METRICS_APISERVICE, body: apiService });
    return true;
  });
}

/** Sets `bundlePem` (PEM, one or more CAs) as caBundle; returns the names of the objects it changed. */
export async function ensureCaBundle(
  apis: { admission: AdmissionregistrationV1Api; registration: ApiregistrationV1Api },
  targets: CaBundleTargets,
  bundlePem: string,
): Promise<string[]> {
  const caBundle = Buffer.from(bundlePem, 'utf8').toString('base64');
  const changed: string[] = [];
  if (await patchWebhookConfiguration(apis.admission, targets.webhookConfiguration, caBundle))
    changed.push(`MutatingWebhookConfiguration/${targets.webhookConfiguration}`);
  if (await patchApiService(apis.registration, targets.metricsService, caBundle)) changed.push(`APIService/${EXTERNAL_METRICS_APISERVICE}`);
  return changed;
}
