/**
 * `--cert-source self`: the webhook issues its own CA and serving certificate
 * (as KEDA's cert rotator and Linkerd's do), so a plain `kubectl apply -k
 * manifests/` works without cert-manager or openssl. Each pass:
 *   1. read the Secret; plan (rotation-plan.ts); if something is due, issue
 *      it and write the Secret with the resourceVersion read (a conflict
 *      means another replica wrote first: read again and adopt its result);
 *   2. put the Secret's CA bundle into the webhook configuration and the
 *      APIService (before any new certificate is served);
 *   3. write the serving pair to the certificate directory, where the TLS
 *      reloader picks it up;
 *   4. keda mode: put the same CA bundle into KEDA's Secret kueuer-backlog-tls
 *      (keda-ca-secret.ts), so KEDA verifies /backlog across rotations. A
 *      failure there (KEDA not installed yet, no RBAC) is logged and retried
 *      on the next pass: it never keeps the webhook from serving.
 * The first pass runs before the server listens, so a replica is Ready only
 * once its certificate's CA is in the configuration. Later passes run every
 * --cert-check-interval, and also at the planned renewal time.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { retryOnConflict, type Cluster } from '../../shared/kube/cluster.js';
import type { TlsFiles } from '../tls-reloader.js';
import { ensureCaBundle, type CaBundleTargets } from './ca-bundle.js';
import { readCertSecret, WriteConflict, writeCertSecret, type SecretRef } from './cert-secret.js';
import { issueCa, issueClientCert, issueServingCert } from './issue.js';
import { syncKedaCaSecret } from './keda-ca-secret.js';
import { bundleWith, planCerts, type CertPolicy, type StoredCerts } from './rotation-plan.js';

export interface SelfIssuerOptions {
  secret: SecretRef;
  targets: CaBundleTargets;
  policy: CertPolicy;
  /** Where the serving pair is written (a writable emptyDir in the pod). */
  dir: string;
  checkIntervalMs: number;
  /** keda mode: KEDA's Secret kueuer-backlog-tls, kept holding the CA bundle. */
  kedaSecret?: SecretRef;
  log: Logger;
}

export interface SelfIssuer {
  files: TlsFiles;
  stop(): void;
}

const CA_NAME = 'kueuer-webhook-ca';
const KEDA_CLIENT_NAME = 'keda-kueuer-backlog';
const MAX_CONFLICTS = 5;

/** The DNS names of the webhook Service, as the apiserver and the aggregator address it. */
export function serviceDnsNames(service: string, namespace: string): string[] {
  return [`${service}.${namespace}.svc`, `${service}.${namespace}.svc.cluster.local`, `${service}.${namespace}`, service];
}

/** The certificates after `action`, from `stored`. */
async function issue(action: 'issue-all' | 'rotate-ca' | 'renew-serving', stored: StoredCerts | null, policy: CertPolicy, now: number): Promise<StoredCerts> {
  if (action === 'renew-serving' && stored) {
    return { ...stored, serving: await issueServingCert(stored.ca, policy.dnsNames, policy.servingLifetimeMs, now) };
  }
  const ca = await issueCa(CA_NAME, policy.caLifetimeMs, now);
  if (action === 'rotate-ca' && stored) return { ca, bundle: bundleWith(ca.cert, stored.bundle, now), serving: stored.serving };
  return { ca, bundle: [ca.cert], serving: await issueServingCert(ca, policy.dnsNames, policy.servingLifetimeMs, now) };
}

function writeAtomically(path: string, content: string): void {
  writeFileSync(`${path}.tmp`, content, { mode: 0o600 });
  renameSync(`${path}.tmp`, path);
}

function readOrEmpty(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

export async function startSelfIssuer(cluster: Cluster, o: SelfIssuerOptions): Promise<SelfIssuer> {
  const { core, admission, registration } = cluster.clients;
  const apis = { admission, registration };
  mkdirSync(o.dir, { recursive: true });
  const files: TlsFiles = { cert: join(o.dir, 'tls.crt'), key: join(o.dir, 'tls.key') };
  const log = o.log;

  /** Step 4: errors are logged, the next pass tries again. */
  const syncKeda = async (ref: SecretRef, certs: StoredCerts) => {
    const secret = `${ref.namespace}/${ref.name}`;
    try {
      const issueClient = () => issueClientCert(certs.ca, KEDA_CLIENT_NAME, o.policy.caLifetimeMs);
      const done = await syncKedaCaSecret(core, ref, certs.bundle.join(''), issueClient);
      if (done !== 'unchanged') log.info({ secret, cas: certs.bundle.length, done }, "set KEDA's CA bundle");
    } catch (err) {
      log.warn({ secret, err: (err as Error).message }, "cannot set KEDA's CA bundle; KEDA cannot verify /backlog until it is set (retried on the next pass)");
    }
  };

  /** Steps 1–4 once; returns when the next pass is due (at the latest). */
  const tryPass = async (): Promise<number> => {
    const read = await readCertSecret(core, o.secret);
    const now = Date.now();
    const plan = planCerts(read.stored, o.policy, now);
    let certs = read.stored;
    if (plan.action !== 'none') {
      const next = await issue(plan.action, read.stored, o.policy, now);
      await writeCertSecret(core, o.secret, read, next);
      log.info({ action: plan.action, reason: plan.reason, secret: `${o.secret.namespace}/${o.secret.name}` }, 'issued webhook certificates');
      certs = next;
    }
    if (!certs) throw new Error('no certificates after issuing'); // unreachable: a plan on null issues
    const changed = await ensureCaBundle(apis, o.targets, certs.bundle.join(''));
    if (changed.length > 0) log.info({ changed, cas: certs.bundle.length }, 'set the caBundle');
    if (readOrEmpty(files.cert) !== certs.serving.cert || readOrEmpty(files.key) !== certs.serving.key) {
      writeAtomically(files.key, certs.serving.key);
      writeAtomically(files.cert, certs.serving.cert);
    }
    if (o.kedaSecret) await syncKeda(o.kedaSecret, certs);
    // After a write, look again a second later (the caBundle has reached the apiserver by then).
    return plan.action === 'none' ? plan.nextCheckAt : now + 1000;
  };
  /** A pass that lost the Secret to another replica reads it again and adopts what that one wrote. */
  const pass = (): Promise<number> =>
    retryOnConflict(tryPass, {
      retries: MAX_CONFLICTS,
      isConflict: (err) => err instanceof WriteConflict,
      onRetry: () => log.info({ secret: `${o.secret.namespace}/${o.secret.name}` }, 'another replica wrote the certificates first; adopting them'),
    });

  await pass();
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const schedule = (dueAt: number) => {
    if (stopped) return;
    const wait = Math.max(50, Math.min(o.checkIntervalMs, dueAt - Date.now()));
    timer = setTimeout(() => {
      pass().then(schedule, (err: unknown) => {
        log.error({ err: (err as Error).message }, 'certificate pass failed; retrying');
        schedule(Date.now() + o.checkIntervalMs);
      });
    }, wait);
  };
  schedule(Date.now() + o.checkIntervalMs);
  return {
    files,
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
