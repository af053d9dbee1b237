/**
 * `kueuer check`: verifies an installation from outside, like `linkerd
 * check`, one line per check (ok, or FAIL with the fix), exit status 1 when
 * any fails. This module reads the cluster (and opens a TCP connection to the
 * broker); cli/install-checks.ts judges what was read.
 */
import net from 'node:net';
import type { KubeConfig, V1Pod } from '@kubernetes/client-node';
import { LABELS, NAMESPACE_LABEL, NAMESPACE_LABEL_VALUE } from '../shared/annotations.js';
import { kubeConfig } from '../shared/kube/object-source.js';
import { dnsLabel, type OptionValues } from '../shared/options.js';
import { parseBackend } from '../shared/transport/backend.js';
import { EXTERNAL_METRICS_APISERVICE, KUEUER_METRICS_SERVICE } from '../webhook/autoscaling/metrics-owner.js';
import { webhookOptions } from '../webhook/config.js';
import { SIDECAR_NAME } from '../webhook/pod-injection.js';
import type { Command } from './commands.js';
import {
  apiServiceCheck,
  certificateChecks,
  fail,
  formatResults,
  nativeSidecarCheck,
  ok,
  rbacCheck,
  REQUIRED_PERMISSIONS,
  type CheckResult,
  type Permission,
} from './install-checks.js';

export const checkOptions = {
  systemNamespace: webhookOptions.systemNamespace,
  webhookConfiguration: {
    flag: 'webhook-configuration',
    env: 'KUEUER_WEBHOOK_CONFIGURATION',
    description: 'the MutatingWebhookConfiguration Kueuer installed',
    defaultValue: 'kueuer',
    parse: dnsLabel('an object name'),
  },
  certSecret: {
    flag: 'cert-secret',
    env: 'KUEUER_CERT_SECRET',
    description: "the Secret in the system namespace holding the webhook's serving certificate (tls.crt)",
    defaultValue: 'kueuer-webhook-tls',
    parse: dnsLabel('a Secret name (a DNS label)'),
  },
  backendSecret: {
    ...webhookOptions.backendSecret,
    description: 'the Secret in the system namespace whose KUEUER_BACKEND names the broker to reach',
  },
  probeNamespace: {
    flag: 'probe-namespace',
    env: 'KUEUER_PROBE_NAMESPACE',
    description: `namespace of the dry-run pod that proves the webhook is reachable (default: the first labelled ${NAMESPACE_LABEL}=${NAMESPACE_LABEL_VALUE})`,
    optional: true as const,
    parse: dnsLabel('a namespace name'),
  },
};

type CheckOptions = OptionValues<typeof checkOptions>;

type K8s = typeof import('@kubernetes/client-node');

function apiError(err: unknown): { code?: number; message: string } {
  const e = err as { code?: number; body?: unknown; message?: string };
  let message = e.message ?? String(err);
  try {
    const body = (typeof e.body === 'string' ? JSON.parse(e.body) : e.body) as { message?: string } | undefined;
    if (body?.message) message = body.message;
  } catch {
    // not JSON: keep the client's message
  }
  return { ...(typeof e.code === 'number' ? { code: e.code } : {}), message: message.split('\n')[0] ?? message };
}

/** A dry-run create of an opted-in pod: the apiserver calls the webhook, which must answer with the sidecar. */
async function webhookReachable(k8s: K8s, kc: KubeConfig, probeNamespace: string | undefined): Promise<CheckResult> {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  let namespace = probeNamespace;
  if (!namespace) {
    const labelled = await core.listNamespace({ labelSelector: `${NAMESPACE_LABEL}=${NAMESPACE_LABEL_VALUE}`, limit: 1 });
    namespace = labelled.items[0]?.metadata?.name;
    if (!namespace) {
      return fail(
        `no namespace is labelled ${NAMESPACE_LABEL}=${NAMESPACE_LABEL_VALUE}, so no pod reaches the webhook`,
        `kubectl label namespace NAME ${NAMESPACE_LABEL}=${NAMESPACE_LABEL_VALUE} (or pass --probe-namespace)`,
      );
    }
  }
  const body: V1Pod = {
    metadata: { generateName: 'kueuer-check-', labels: { [LABELS.inject]: 'true' } },
    spec: { containers: [{ name: 'app', image: 'kueuer-check', ports: [{ containerPort: 8080 }] }] },
  };
  try {
    const pod = await core.createNamespacedPod({ namespace, body, dryRun: 'All' });
    const injected = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])].some((c) => c.name === SIDECAR_NAME);
    if (injected) return ok(`webhook reachable through the apiserver (a dry-run pod in namespace ${namespace} got the sidecar)`);
    return fail(
      `a dry-run pod labelled ${LABELS.inject} in namespace ${namespace} was admitted without the sidecar: the webhook configuration does not send it`,
      `check the configuration's namespaceSelector (${NAMESPACE_LABEL}) and objectSelector (${LABELS.inject}), e.g. kubectl apply -k manifests/`,
    );
  } catch (err) {
    return fail(
      `webhook not reachable through the apiserver (dry-run pod in namespace ${namespace}): ${apiError(err).message}`,
      'see the certificate lines above; check the webhook pods (kubectl -n kueuer-system get pods) and their log',
    );
  }
}

/** Opens (and closes) a TCP connection. */
function connect(host: string, port: number, timeoutMs = 3000): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    socket.setTimeout(timeoutMs, () => socket.destroy(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: 'ETIMEDOUT' })));
    socket.once('connect', () => {
      socket.destroy();
      resolve();
    });
    socket.once('error', reject);
  });
}

export function brokerAddresses(backend: string): Array<{ host: string; port: number }> {
  const spec = parseBackend(backend);
  if (spec.kind === 'amqp') {
    const url = new URL(spec.url);
    return [{ host: url.hostname, port: Number(url.port || (url.protocol === 'amqps:' ? 5671 : 5672)) }];
  }
  if (spec.kind === 'kafka') {
    return spec.spec.brokers.map((b) => {
      const i = b.lastIndexOf(':');
      return { host: b.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(b.slice(i + 1)) };
    });
  }
  return [];
}

/** The broker named by the backend Secret answers a TCP connection from here. Credentials are never printed. */
async function brokerReachable(k8s: K8s, kc: KubeConfig, namespace: string, secretName: string): Promise<CheckResult> {
  const where = `Secret ${namespace}/${secretName}`;
  const create = `kubectl -n ${namespace} create secret generic ${secretName} --from-literal=KUEUER_BACKEND=amqp://USER:PASS@HOST:5672`;
  let raw: string | undefined;
  try {
    const secret = await kc.makeApiClient(k8s.CoreV1Api).readNamespacedSecret({ namespace, name: secretName });
    const data = secret.data?.KUEUER_BACKEND;
    raw = data === undefined ? undefined : Buffer.from(data, 'base64').toString('utf8');
  } catch (err) {
    return fail(`broker unknown: cannot read ${where}: ${apiError(err).message}`, create);
  }
  if (!raw) return fail(`broker unknown: ${where} has no KUEUER_BACKEND`, create);
  let addresses;
  try {
    addresses = brokerAddresses(raw);
  } catch (err) {
    return fail(`KUEUER_BACKEND in ${where} is not a broker URL: ${(err as Error).message}`, create);
  }
  if (addresses.length === 0) return fail(`KUEUER_BACKEND in ${where} names no network broker`, create);
  for (const { host, port } of addresses) {
    try {
      await connect(host, port);
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
        return fail(
          `broker ${host}:${port} (${where}): the name does not resolve from here`,
          `if it is a cluster-internal name, run the check inside the cluster: kubectl -n ${namespace} exec deploy/kueuer-webhook -- kueuer check`,
        );
      }
      return fail(
        `broker ${host}:${port} (${where}) not reachable: ${code ?? (err as Error).message}`,
        'check the broker runs and the host and port in KUEUER_BACKEND',
      );
    }
  }
  return ok(`broker reachable: ${addresses.map((a) => `${a.host}:${a.port}`).join(', ')} (${where})`);
}

async function deniedPermissions(k8s: K8s, kc: KubeConfig, namespace: string): Promise<Array<{ permission: Permission; reason: string }>> {
  const authz = kc.makeApiClient(k8s.AuthorizationV1Api);
  const reviews = await Promise.all(
    REQUIRED_PERMISSIONS.map(async (permission) => {
      const review = await authz.createSubjectAccessReview({
        body: {
          spec: {
            user: `system:serviceaccount:${namespace}:${permission.serviceAccount}`,
            groups: ['system:serviceaccounts', `system:serviceaccounts:${namespace}`, 'system:authenticated'],
            resourceAttributes: { verb: permission.verb, group: permission.group, resource: permission.resource },
          },
        },
      });
      return { permission, allowed: review.status?.allowed === true, reason: review.status?.reason ?? '' };
    }),
  );
  return reviews.filter((r) => !r.allowed).map(({ permission, reason }) => ({ permission, reason }));
}

/** Runs every check against the current kubeconfig's cluster. */
export async function runChecks(o: CheckOptions): Promise<CheckResult[]> {
  const k8s = await import('@kubernetes/client-node');
  const kc = await kubeConfig();
  const server = kc.getCurrentCluster()?.server ?? '(no cluster configured)';
  const ns = o.systemNamespace;
  const results: CheckResult[] = [];
  let version;
  try {
    version = await kc.makeApiClient(k8s.VersionApi).getCode();
  } catch (err) {
    return [fail(`Kubernetes API at ${server} does not answer: ${apiError(err).message}`, 'set KUBECONFIG (or the current context) to the cluster')];
  }
  results.push(ok(`Kubernetes API answers at ${server} (${version.gitVersion})`), nativeSidecarCheck(version));

  let caBundle: string | undefined;
  try {
    const config = await kc.makeApiClient(k8s.AdmissionregistrationV1Api).readMutatingWebhookConfiguration({ name: o.webhookConfiguration });
    const bundles = new Set((config.webhooks ?? []).map((w) => w.clientConfig.caBundle ?? ''));
    caBundle = bundles.size === 1 ? [...bundles][0] || undefined : undefined;
    results.push(
      bundles.size > 1
        ? fail(`MutatingWebhookConfiguration ${o.webhookConfiguration}: its webhooks have different caBundles`, 'give every webhook the same caBundle')
        : ok(`MutatingWebhookConfiguration ${o.webhookConfiguration} installed (${config.webhooks?.length ?? 0} webhooks)`),
    );
  } catch (err) {
    results.push(fail(`MutatingWebhookConfiguration ${o.webhookConfiguration}: ${apiError(err).message}`, 'install Kueuer (README, Install on a cluster)'));
  }
  let servingPem: string | undefined;
  try {
    const secret = await kc.makeApiClient(k8s.CoreV1Api).readNamespacedSecret({ namespace: ns, name: o.certSecret });
    const crt = secret.data?.['tls.crt'];
    servingPem = crt === undefined ? undefined : Buffer.from(crt, 'base64').toString('utf8');
  } catch (err) {
    if (apiError(err).code !== 404) throw err;
  }
  results.push(...certificateChecks(caBundle, servingPem, `${KUEUER_METRICS_SERVICE.name}.${ns}.svc`));
  results.push(await webhookReachable(k8s, kc, o.probeNamespace));

  let mode = 'external';
  try {
    const config = await kc.makeApiClient(k8s.CoreV1Api).readNamespacedConfigMap({ namespace: ns, name: 'kueuer-config' });
    mode = config.data?.KUEUER_AUTOSCALING ?? mode;
  } catch {
    // no ConfigMap: the webhook's default mode
  }
  let apiService = null;
  try {
    apiService = await kc.makeApiClient(k8s.ApiregistrationV1Api).readAPIService({ name: EXTERNAL_METRICS_APISERVICE });
  } catch (err) {
    if (apiError(err).code !== 404) throw err;
  }
  results.push(apiServiceCheck(mode, apiService, { namespace: ns, name: KUEUER_METRICS_SERVICE.name }));
  results.push(await brokerReachable(k8s, kc, ns, o.backendSecret));
  results.push(rbacCheck(ns, await deniedPermissions(k8s, kc, ns)));
  return results;
}

export const checkCommand: Command<typeof checkOptions> = {
  name: 'check',
  usage: 'kueuer check [--system-namespace NS] [--probe-namespace NS] [options]',
  summary: 'Checks an installation through the Kubernetes API: one line per check, ok or FAIL with the fix; exit status 1 if any fails.',
  options: checkOptions,
  async run(o) {
    let results: CheckResult[];
    try {
      results = await runChecks(o);
    } catch (err) {
      process.stderr.write(`kueuer check: ${apiError(err).message}\n`);
      return 1;
    }
    const { text, passed } = formatResults(results);
    process.stdout.write(text);
    return passed ? 0 : 1;
  },
};
