/**
 * What `kueuer check` verifies of an installation, as pure functions from
 * what was read to one result per line: ok, or fail with the fix. The
 * reading (the Kubernetes API, a TCP connection to the broker) is in
 * cli/check.ts.
 */
import type { X509Certificate } from 'node:crypto';
import { parseCertificate, parsePemBundle } from '../shared/pem.js';
import { supportsNativeSidecars } from '../webhook/cluster-version.js';
import { decideMetricsOwner, EXTERNAL_METRICS_APISERVICE, type ApiServiceLike, type ServiceRef } from '../webhook/autoscaling/metrics-owner.js';

export interface CheckResult {
  ok: boolean;
  /** What was checked, and what was found. */
  what: string;
  /** For a failure: what to do. */
  fix?: string;
}

export const ok = (what: string): CheckResult => ({ ok: true, what });
export const fail = (what: string, fix: string): CheckResult => ({ ok: false, what, fix });

const DAY_MS = 86_400_000;
/** A certificate closer than this to its end is reported as a failure: rotation should have happened. */
export const EXPIRY_WARNING_DAYS = 7;

export function nativeSidecarCheck(version: { major: string; minor: string; gitVersion: string }): CheckResult {
  return supportsNativeSidecars(version.major, version.minor)
    ? ok(`native sidecars supported (Kubernetes ${version.gitVersion} ≥ 1.29)`)
    : fail(
        `native sidecars not supported (Kubernetes ${version.gitVersion} < 1.29): sidecars are injected as classic containers, which may stop before the app`,
        'upgrade the cluster to 1.29 or newer',
      );
}

function daysLeft(cert: X509Certificate, now: Date): number {
  return Math.floor((Date.parse(cert.validTo) - now.getTime()) / DAY_MS);
}

function validity(name: string, cert: X509Certificate, now: Date, fix: string): CheckResult {
  if (Date.parse(cert.validFrom) > now.getTime()) return fail(`${name} is not valid before ${cert.validFrom}`, fix);
  const days = daysLeft(cert, now);
  if (days < 0) return fail(`${name} expired on ${cert.validTo}`, fix);
  if (days < EXPIRY_WARNING_DAYS) return fail(`${name} expires in ${days} days (${cert.validTo})`, fix);
  return ok(`${name} valid, ${days} days to expiry (${cert.validTo})`);
}

/**
 * The caBundle of the webhook configuration and the serving certificate (the
 * Secret's tls.crt): both parse, both are valid for more than a week, the CA
 * signed the certificate, and the certificate names the webhook Service.
 */
export function certificateChecks(caBundleBase64: string | undefined, servingPem: string | undefined, serviceDns: string, now = new Date()): CheckResult[] {
  const results: CheckResult[] = [];
  const certFix =
    'renew the certificate: with --cert-source self the webhook rotates it (check its log); with scripts/install.sh run it again; with cert-manager check the Certificate kueuer-webhook';
  const bundle = caBundleBase64 ? parsePemBundle(Buffer.from(caBundleBase64, 'base64').toString('utf8')) : null;
  if (!caBundleBase64) {
    results.push(
      fail(
        'the webhook configuration has an empty caBundle: the apiserver cannot verify the webhook, so every opted-in pod and Service is refused',
        'set the caBundle: run scripts/install.sh, use the cert-manager component, or let the webhook (--cert-source self) set it',
      ),
    );
  } else if (!bundle) results.push(fail('the caBundle is not a PEM certificate', 'set the caBundle to the base64 of the CA certificate (ca.crt)'));
  const serving = servingPem ? parseCertificate(servingPem) : null;
  // The CA judged is the one that signed the serving certificate (the newest
  // of the bundle when none did: that failure is reported below).
  const signer = bundle && serving ? bundle.find((ca) => serving.checkIssued(ca) && serving.verify(ca.publicKey)) : undefined;
  const ca = signer ?? bundle?.at(-1);
  if (ca)
    results.push(validity(bundle && bundle.length > 1 ? `CA certificate (caBundle, ${bundle.length} CAs)` : 'CA certificate (caBundle)', ca, now, certFix));
  if (!serving) {
    results.push(
      fail(
        servingPem ? "the serving certificate (the TLS Secret's tls.crt) is not PEM" : 'no serving certificate: the TLS Secret has no tls.crt',
        'create the Secret kueuer-webhook-tls (tls.crt, tls.key, ca.crt; scripts/gen-certs.sh makes them) or use --cert-source self',
      ),
    );
    return results;
  }
  results.push(validity('serving certificate', serving, now, certFix));
  if (bundle && !signer) {
    results.push(
      fail(
        'the serving certificate was not signed by the CA in the caBundle: the apiserver refuses the webhook (x509: certificate signed by unknown authority)',
        "set the caBundle to the CA that signed tls.crt (the Secret's ca.crt)",
      ),
    );
  }
  if (!serving.checkHost(serviceDns)) {
    results.push(fail(`the serving certificate does not name ${serviceDns}`, `issue it with the DNS name ${serviceDns} (scripts/gen-certs.sh does)`));
  }
  return results;
}

/** The external metrics APIService, when Kueuer serves it (autoscaling external). */
export function apiServiceCheck(
  mode: string,
  apiService: (ApiServiceLike & { status?: { conditions?: Array<{ type: string; status: string; message?: string }> } }) | null,
  expected: ServiceRef,
): CheckResult {
  if (mode !== 'external') return ok(`APIService ${EXTERNAL_METRICS_APISERVICE} not needed (autoscaling ${mode})`);
  const owner = decideMetricsOwner(apiService, expected);
  if (owner.kind === 'absent') {
    return fail(
      `APIService ${EXTERNAL_METRICS_APISERVICE} does not exist: generated HPAs have no metric`,
      'apply the manifests again (base/autoscaling), or set KUEUER_AUTOSCALING to keda, prometheus-adapter or off in the ConfigMap kueuer-config',
    );
  }
  if (owner.kind === 'foreign') {
    // decideMetricsOwner's one-line refusal: "<who owns it>: only one … refuses to take it over; <fix>".
    const [what, why] = owner.message.split(': only one');
    return fail(what!, why?.slice(why.indexOf('take it over; ') + 'take it over; '.length) ?? owner.message);
  }
  const available = apiService?.status?.conditions?.find((c) => c.type === 'Available');
  if (available?.status !== 'True') {
    return fail(
      `APIService ${EXTERNAL_METRICS_APISERVICE} is owned by Kueuer but not available${available?.message ? `: ${available.message}` : ''}`,
      `check the webhook pods and their Service ${expected.namespace}/${expected.name} (kubectl -n ${expected.namespace} get pods,endpointslices)`,
    );
  }
  return ok(`APIService ${EXTERNAL_METRICS_APISERVICE} available and owned by Kueuer (${expected.namespace}/${expected.name})`);
}

/** One permission a Kueuer ServiceAccount needs. */
export interface Permission {
  serviceAccount: string;
  verb: string;
  group: string;
  resource: string;
  /** Why it needs it (in the failure line). */
  why: string;
}

/** The permissions without which the webhook or the responder cannot work (the full set is manifests/base/rbac.yaml). */
export const REQUIRED_PERMISSIONS: readonly Permission[] = [
  { serviceAccount: 'kueuer-webhook', verb: 'watch', group: '', resource: 'services', why: 'hands out responder ports' },
  { serviceAccount: 'kueuer-webhook', verb: 'create', group: 'discovery.k8s.io', resource: 'endpointslices', why: 'points queued Services at the responders' },
  { serviceAccount: 'kueuer-webhook', verb: 'get', group: 'batch', resource: 'jobs', why: "names the queue of a Job's pods" },
  { serviceAccount: 'kueuer-webhook', verb: 'create', group: '', resource: 'events', why: 'records refusals and scaling' },
  { serviceAccount: 'kueuer-webhook', verb: 'create', group: 'autoscaling', resource: 'horizontalpodautoscalers', why: 'generates HPAs' },
  { serviceAccount: 'kueuer-responder', verb: 'watch', group: '', resource: 'services', why: 'learns its routes' },
  {
    serviceAccount: 'kueuer-webhook',
    verb: 'delete',
    group: '',
    resource: 'endpoints',
    why: 'removes the old endpoints of a Service opted in after it had some',
  },
];

export function rbacCheck(namespace: string, denied: ReadonlyArray<{ permission: Permission; reason: string }>): CheckResult {
  if (denied.length === 0) {
    return ok(`RBAC sufficient (${REQUIRED_PERMISSIONS.length} permissions of ${namespace}/kueuer-webhook and ${namespace}/kueuer-responder)`);
  }
  const list = denied.map(({ permission: p }) => `${p.serviceAccount} may not ${p.verb} ${p.resource}${p.group ? `.${p.group}` : ''} (${p.why})`);
  return fail(
    `RBAC insufficient: ${list.join('; ')}`,
    'apply the ClusterRoles and bindings of manifests/base/rbac.yaml and manifests/base/autoscaling/rbac.yaml',
  );
}

/** The lines `kueuer check` prints, and whether every check passed. */
export function formatResults(results: readonly CheckResult[]): { text: string; passed: boolean } {
  const lines: string[] = [];
  for (const r of results) {
    lines.push(`${r.ok ? 'ok  ' : 'FAIL'} ${r.what}`);
    if (!r.ok && r.fix) lines.push(`     fix: ${r.fix}`);
  }
  const failed = results.filter((r) => !r.ok).length;
  lines.push(failed === 0 ? `kueuer check: all ${results.length} checks passed` : `kueuer check: ${failed} of ${results.length} checks failed`);
  return { text: `${lines.join('\n')}\n`, passed: failed === 0 };
}

/**
 * A check whose read failed: forbidden names the missing permission (verb
 * and resource); a timeout says the API does not answer; anything else is
 * reported as it is. The other checks still run.
 */
export function readFailure(
  what: string,
  read: { verb: string; resource: string; namespace?: string },
  err: { code?: number; message: string; timedOutAfterS?: number },
): CheckResult {
  const scope = read.namespace ? ` in namespace ${read.namespace}` : '';
  if (err.timedOutAfterS !== undefined) {
    return fail(`${what}: the Kubernetes API did not answer within ${err.timedOutAfterS} s`, 'check the apiserver (and any webhook it calls) is healthy');
  }
  if (err.code === 403) {
    return fail(
      `${what}: forbidden: the user running kueuer check may not ${read.verb} ${read.resource}${scope}`,
      `grant ${read.verb} on ${read.resource}${scope} to this user (kubectl auth can-i ${read.verb} ${read.resource}${read.namespace ? ` -n ${read.namespace}` : ''})`,
    );
  }
  return fail(`${what}: ${err.message}`, 'see the message; run kueuer check again once the API answers');
}

/** A webhook named in an apiserver message belongs to Kueuer when its name is under kueuer.io. */
const KUEUER_WEBHOOK = /webhook "[^"]*\.kueuer\.io"/;

/**
 * Why a dry-run create of the probe pod was refused: Kueuer's webhook could
 * not be called, Kueuer's webhook denied it, or something else refused it
 * (PodSecurity, a ResourceQuota, another webhook, RBAC), which says nothing
 * about Kueuer's webhook.
 */
export function dryRunRefusal(namespace: string, systemNamespace: string, err: { code?: number; message: string }): CheckResult {
  const where = `dry-run pod in namespace ${namespace}`;
  const pods = `check the webhook pods (kubectl -n ${systemNamespace} get pods) and their log`;
  if (KUEUER_WEBHOOK.test(err.message) && /denied the request/.test(err.message)) {
    return fail(`Kueuer's webhook refused the ${where}: ${err.message}`, pods);
  }
  if (KUEUER_WEBHOOK.test(err.message)) {
    return fail(`webhook not reachable through the apiserver (${where}): ${err.message}`, `see the certificate lines above; ${pods}`);
  }
  if (err.code === 403 && /cannot create resource "pods"/.test(err.message)) {
    return fail(
      `webhook not checked: the user running kueuer check may not create pods in namespace ${namespace} (even as a dry run): ${err.message}`,
      `grant create on pods in namespace ${namespace} to this user, or pass --probe-namespace NS where it may`,
    );
  }
  return fail(
    `webhook not checked: the ${where} was refused before or apart from Kueuer's webhook (PodSecurity, a ResourceQuota, another webhook…): ${err.message}`,
    `pass --probe-namespace NS of an opted-in namespace that admits a plain pod, or fix what refused it`,
  );
}
