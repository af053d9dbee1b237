/**
 * Only one APIService may serve external.metrics.k8s.io/v1beta1 per cluster
 * (KEDA, prometheus-adapter and Datadog's cluster agent all want it). In the
 * `external` metric mode Kueuer serves it; before starting it reads the
 * APIService and refuses to run when another service owns it, instead of
 * silently taking it over at the next `kubectl apply`. The decision is pure
 * (`decideMetricsOwner`); `checkExternalMetricsOwner` does the API read.
 * scripts/install.sh makes the same check, with the same message, before it
 * applies anything.
 */
import { statusOf, type Cluster } from '../../shared/kube/cluster.js';
import type { Logger } from 'pino';

export const EXTERNAL_METRICS_APISERVICE = 'v1beta1.external.metrics.k8s.io';

export interface ServiceRef {
  namespace: string;
  name: string;
}

/** Where the manifests and the chart point the APIService: the webhook's Service in Kueuer's namespace. */
export const KUEUER_METRICS_SERVICE: ServiceRef = { namespace: 'kueuer-system', name: 'kueuer-webhook' };

/** The expected Service: `KUEUER_SYSTEM_NAMESPACE` (the webhook's --system-namespace) / kueuer-webhook. */
export function expectedMetricsService(env: NodeJS.ProcessEnv = process.env): ServiceRef {
  return { namespace: env.KUEUER_SYSTEM_NAMESPACE || KUEUER_METRICS_SERVICE.namespace, name: KUEUER_METRICS_SERVICE.name };
}

/** The parts of an APIService read here; null when none exists. */
export interface ApiServiceLike {
  spec?: { service?: { namespace?: string; name?: string } | null } | null;
}

export type OwnerDecision = { kind: 'absent' } | { kind: 'ours' } | { kind: 'foreign'; owner: string; message: string };

/** The fix for a known owner: switch Kueuer to that owner's mode, else remove the other one. */
function fixFor(owner: ServiceRef | null): string {
  const name = owner?.name ?? '';
  if (/keda/.test(name)) return "run Kueuer with --autoscaling keda (KUEUER_AUTOSCALING=keda; the keda component or the chart's autoscaling.mode=keda)";
  if (/prometheus-adapter/.test(name))
    return "run Kueuer with --autoscaling prometheus-adapter (KUEUER_AUTOSCALING=prometheus-adapter; the chart's autoscaling.mode=prometheus-adapter)";
  return `uninstall the other metrics server (kubectl delete apiservice ${EXTERNAL_METRICS_APISERVICE}), or run Kueuer with --autoscaling keda or --autoscaling prometheus-adapter if it is KEDA or prometheus-adapter`;
}

/** Who owns external.metrics.k8s.io, and the one-line refusal when it is not Kueuer. Pure. */
export function decideMetricsOwner(apiService: ApiServiceLike | null, expected: ServiceRef = KUEUER_METRICS_SERVICE): OwnerDecision {
  if (!apiService) return { kind: 'absent' };
  const service = apiService.spec?.service;
  if (service && service.namespace === expected.namespace && service.name === expected.name) return { kind: 'ours' };
  const ref = service?.namespace && service.name ? { namespace: service.namespace, name: service.name } : null;
  const owner = ref ? `${ref.namespace}/${ref.name}` : 'the API server itself (no spec.service)';
  return {
    kind: 'foreign',
    owner,
    message:
      `APIService ${EXTERNAL_METRICS_APISERVICE} is owned by ${owner}, not Kueuer's ${expected.namespace}/${expected.name}: ` +
      `only one external metrics server can run per cluster, so --autoscaling external refuses to take it over; ${fixFor(ref)}`,
  };
}

export class MetricsOwnerError extends Error {
  constructor(
    message: string,
    readonly owner: string,
  ) {
    super(message);
    this.name = 'MetricsOwnerError';
  }
}

/**
 * Reads the APIService and throws a MetricsOwnerError (the CLI prints it as
 * one line and exits 1) when another service owns it. When the webhook may
 * not read APIServices it warns and goes on: the check is a guard, not a need.
 */
export async function checkExternalMetricsOwner(cluster: Cluster, expected: ServiceRef, log?: Logger): Promise<OwnerDecision> {
  let found: ApiServiceLike | null;
  try {
    found = await cluster.clients.registration.readAPIService({ name: EXTERNAL_METRICS_APISERVICE });
  } catch (err) {
    const code = statusOf(err);
    if (code === 404) found = null;
    else if (code === 403) {
      log?.warn(
        { apiService: EXTERNAL_METRICS_APISERVICE },
        'may not read the external metrics APIService; its owner is not checked (grant get on apiregistration.k8s.io apiservices)',
      );
      return { kind: 'absent' };
    } else throw new Error(`cannot read APIService ${EXTERNAL_METRICS_APISERVICE}: ${(err as Error).message}`);
  }
  const decision = decideMetricsOwner(found, expected);
  if (decision.kind === 'foreign') throw new MetricsOwnerError(decision.message, decision.owner);
  return decision;
}
