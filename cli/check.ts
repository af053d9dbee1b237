/**
 * `kueuer check`: verifies an installation from outside, like `linkerd
 * check`, one line per check (ok, or FAIL with the fix), exit status 1 when
 * any fails. This module reads the cluster (and opens a TCP connection to the
 * broker); cli/install-checks.ts judges what was read.
 */
import { apiSecretSettings } from '../shared/broker-secret/shapes.js';
import { replicationChecks } from './broker-checks.js';
import net from 'node:net';
import type { V1Pod } from '@kubernetes/client-node';
import { LABELS, NAMESPACE_LABEL, NAMESPACE_LABEL_VALUE } from '../shared/annotations.js';
import type { Cluster } from '../shared/kube/cluster.js';
import { dnsLabel, type OptionValues } from '../shared/options.js';
import { parseBackend } from '../shared/transport/backend.js';
import { amqpHostUrls } from '../shared/transport/amqp/url.js';
import { EXTERNAL_METRICS_APISERVICE, KUEUER_METRICS_SERVICE } from '../webhook/autoscaling/metrics-owner.js';
import { webhookOptions } from '../webhook/config.js';
import { SIDECAR_NAME } from '../webhook/admission/pod-injection.js';
import type { Command } from './command.js';
import { apiDoesNotAnswer, apiError, apiTimeoutOption, kubeconfigFix, KubeTimeoutError, openCommandCluster } from './kube-call.js';
import {
  apiServiceCheck,
  certificateChecks,
  dryRunRefusal,
  fail,
  formatResults,
  nativeSidecarCheck,
  ok,
  rbacCheck,
  readFailure,
  REQUIRED_PERMISSIONS,
  type CheckResult,
  type Permission,
} from './install-checks.js';
import { depthCheck, serviceTrafficCheck } from './traffic-checks.js';

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
  apiTimeout: apiTimeoutOption,
  probeNamespace: {
    flag: 'probe-namespace',
    env: 'KUEUER_PROBE_NAMESPACE',
    description: `namespace of the dry-run pod that proves the webhook is reachable (default: the first labelled ${NAMESPACE_LABEL}=${NAMESPACE_LABEL_VALUE})`,
    optional: true as const,
    parse: dnsLabel('a namespace name'),
  },
};

type CheckOptions = OptionValues<typeof checkOptions>;

/** An error as readFailure takes it: the API's code and message, or the timeout. */
function failure(err: unknown): { code?: number; message: string; timedOutAfterS?: number } {
  return err instanceof KubeTimeoutError ? { message: err.message, timedOutAfterS: err.seconds } : apiError(err);
}

/** A dry-run create of an opted-in pod: the apiserver calls the webhook, which must answer with the sidecar. */
async function webhookReachable(cluster: Cluster, o: CheckOptions): Promise<CheckResult> {
  const core = cluster.clients.core;
  let namespace = o.probeNamespace;
  if (!namespace) {
    try {
      const labelled = await core.listNamespace({ labelSelector: `${NAMESPACE_LABEL}=${NAMESPACE_LABEL_VALUE}`, limit: 1 });
      namespace = labelled.items[0]?.metadata?.name;
    } catch (err) {
      return readFailure('webhook not checked: cannot find an opted-in namespace to probe', { verb: 'list', resource: 'namespaces' }, failure(err));
    }
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
  let pod;
  try {
    pod = await core.createNamespacedPod({ namespace, body, dryRun: 'All' });
  } catch (err) {
    if (err instanceof KubeTimeoutError) {
      return readFailure(`webhook not checked (dry-run pod in namespace ${namespace})`, { verb: 'create', resource: 'pods', namespace }, failure(err));
    }
    return dryRunRefusal(namespace, o.systemNamespace, apiError(err));
  }
  const injected = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])].some((c) => c.name === SIDECAR_NAME);
  if (injected) return ok(`webhook reachable through the apiserver (a dry-run pod in namespace ${namespace} got the sidecar)`);
  return fail(
    `a dry-run pod labelled ${LABELS.inject} in namespace ${namespace} was admitted without the sidecar: the webhook configuration does not send it`,
    `check the configuration's namespaceSelector (${NAMESPACE_LABEL}) and objectSelector (${LABELS.inject}), e.g. kubectl apply -k manifests/`,
  );
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
    return amqpHostUrls(spec.url).map((single) => {
      const url = new URL(single);
      return { host: url.hostname.replace(/^\[|\]$/g, ''), port: Number(url.port || (url.protocol === 'amqps:' ? 5671 : 5672)) };
    });
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
async function brokerReachable(cluster: Cluster, namespace: string, secretName: string): Promise<CheckResult> {
  const where = `Secret ${namespace}/${secretName}`;
  const create = `kubectl -n ${namespace} create secret generic ${secretName} --from-literal=KUEUER_BACKEND=amqp://USER:PASS@HOST:5672`;
  let data: Record<string, string> | undefined;
  try {
    data = (await cluster.clients.core.readNamespacedSecret({ namespace, name: secretName })).data;
  } catch (err) {
    const why = failure(err);
    if (why.code === 403 || why.timedOutAfterS !== undefined) {
      return readFailure(`broker unknown: cannot read ${where}`, { verb: 'get', resource: 'secrets', namespace }, why);
    }
    return fail(`broker unknown: cannot read ${where}: ${why.message}`, create);
  }
  let raw: string | undefined;
  try {
    raw = apiSecretSettings(secretName, data).KUEUER_BACKEND; // Kueuer's keys, or an operator's Secret read by its shape
  } catch (err) {
    return fail(`broker unknown: ${(err as Error).message}`, create);
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
          `if it is a cluster-internal name, the responders' readiness is the in-cluster view (Ready only while connected to the broker): kubectl -n ${namespace} get pods -l app.kubernetes.io/component=responder`,
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

async function deniedPermissions(cluster: Cluster, namespace: string): Promise<Array<{ permission: Permission; reason: string }>> {
  const authz = cluster.clients.authorization;
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

/** The webhook configuration's one caBundle, and its check. */
async function webhookConfigurationCheck(cluster: Cluster, name: string): Promise<{ result: CheckResult; caBundle?: string }> {
  const what = `MutatingWebhookConfiguration ${name}`;
  try {
    const config = await cluster.clients.admission.readMutatingWebhookConfiguration({ name });
    const bundles = new Set((config.webhooks ?? []).map((w) => w.clientConfig.caBundle ?? ''));
    if (bundles.size > 1) return { result: fail(`${what}: its webhooks have different caBundles`, 'give every webhook the same caBundle') };
    const caBundle = [...bundles][0] || undefined;
    return { result: ok(`${what} installed (${config.webhooks?.length ?? 0} webhooks)`), ...(caBundle ? { caBundle } : {}) };
  } catch (err) {
    const why = failure(err);
    if (why.code === 404) return { result: fail(`${what}: ${why.message}`, 'install Kueuer (README, Install on a cluster)') };
    return { result: readFailure(what, { verb: 'get', resource: 'mutatingwebhookconfigurations.admissionregistration.k8s.io' }, why) };
  }
}

/** The serving certificate (tls.crt of the TLS Secret) and the caBundle, judged together. */
async function certificateCheck(cluster: Cluster, o: CheckOptions, caBundle: string | undefined): Promise<CheckResult[]> {
  const ns = o.systemNamespace;
  let servingPem: string | undefined;
  try {
    const secret = await cluster.clients.core.readNamespacedSecret({ namespace: ns, name: o.certSecret });
    const crt = secret.data?.['tls.crt'];
    servingPem = crt === undefined ? undefined : Buffer.from(crt, 'base64').toString('utf8');
  } catch (err) {
    const why = failure(err);
    if (why.code !== 404)
      return [readFailure(`serving certificate unknown: cannot read Secret ${ns}/${o.certSecret}`, { verb: 'get', resource: 'secrets', namespace: ns }, why)];
  }
  return certificateChecks(caBundle, servingPem, `${KUEUER_METRICS_SERVICE.name}.${ns}.svc`);
}

/** KUEUER_AUTOSCALING of the ConfigMap kueuer-config; without it (or unreadable), the webhook's default mode. */
async function autoscalingMode(cluster: Cluster, ns: string): Promise<string> {
  try {
    const config = await cluster.clients.core.readNamespacedConfigMap({ namespace: ns, name: 'kueuer-config' });
    return config.data?.KUEUER_AUTOSCALING ?? 'external';
  } catch {
    return 'external';
  }
}

async function externalMetricsCheck(cluster: Cluster, ns: string, mode: string): Promise<CheckResult> {
  let apiService = null;
  try {
    apiService = await cluster.clients.registration.readAPIService({ name: EXTERNAL_METRICS_APISERVICE });
  } catch (err) {
    const why = failure(err);
    if (why.code !== 404)
      return readFailure(`APIService ${EXTERNAL_METRICS_APISERVICE} unknown`, { verb: 'get', resource: 'apiservices.apiregistration.k8s.io' }, why);
  }
  return apiServiceCheck(mode, apiService, { namespace: ns, name: KUEUER_METRICS_SERVICE.name });
}

async function rbacSufficient(cluster: Cluster, ns: string): Promise<CheckResult> {
  try {
    return rbacCheck(ns, await deniedPermissions(cluster, ns));
  } catch (err) {
    return readFailure('RBAC unknown', { verb: 'create', resource: 'subjectaccessreviews.authorization.k8s.io' }, failure(err));
  }
}

/** Runs every check against the current kubeconfig's cluster; each check reports its own failure and the rest still run. */
export async function runChecks(o: CheckOptions): Promise<CheckResult[]> {
  const cluster = await openCommandCluster(o.apiTimeout);
  const { server } = cluster;
  const ns = o.systemNamespace;
  let version;
  try {
    version = await cluster.clients.version.getCode();
  } catch (err) {
    return [fail(apiDoesNotAnswer(server, err), kubeconfigFix(server))];
  }
  const results: CheckResult[] = [ok(`Kubernetes API answers at ${server} (${version.gitVersion})`), nativeSidecarCheck(version)];
  const configuration = await webhookConfigurationCheck(cluster, o.webhookConfiguration);
  results.push(configuration.result);
  results.push(...(await certificateCheck(cluster, o, configuration.caBundle)));
  results.push(await webhookReachable(cluster, o));
  const mode = await autoscalingMode(cluster, ns);
  results.push(await externalMetricsCheck(cluster, ns, mode));
  results.push(await brokerReachable(cluster, ns, o.backendSecret));
  results.push(await depthCheck(cluster, ns, o.backendSecret, mode));
  results.push(...(await replicationChecks(cluster, o.backendSecret)));
  results.push(await rbacSufficient(cluster, ns));
  results.push(...(await serviceTrafficCheck(cluster)));
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
