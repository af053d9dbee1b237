import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  apiServiceCheck,
  certificateChecks,
  dryRunRefusal,
  formatResults,
  nativeSidecarCheck,
  rbacCheck,
  readFailure,
  REQUIRED_PERMISSIONS,
} from '../../cli/install-checks.js';
import { brokerAddresses } from '../../cli/check.js';
import { generateCerts } from '../helpers/webhook.js';

const DNS = 'kueuer-webhook.kueuer-system.svc';
const DAY = 86_400_000;

describe("kueuer check's judgements", () => {
  const a = generateCerts(undefined, [DNS]);
  const b = generateCerts(undefined, ['other.example']);
  const caA = a.ca.toString('base64');
  const certA = readFileSync(a.cert, 'utf8');

  it('a matching CA and certificate pass, with the days to expiry', () => {
    const results = certificateChecks(caA, certA, DNS);
    expect(results.map((r) => r.ok)).toEqual([true, true]);
    expect(results[1]!.what).toMatch(/^serving certificate valid, 36[45] days to expiry/);
  });

  it('an expired or nearly expired certificate fails', () => {
    const soon = certificateChecks(caA, certA, DNS, new Date(Date.now() + 362 * DAY));
    expect(soon[1]).toMatchObject({ ok: false, what: expect.stringMatching(/^serving certificate expires in \d days/) });
    const after = certificateChecks(caA, certA, DNS, new Date(Date.now() + 400 * DAY));
    expect(after[0]).toMatchObject({ ok: false, what: expect.stringMatching(/^CA certificate \(caBundle\) expired on /) });
  });

  it('a certificate from another CA, or for another name, fails naming the x509 error', () => {
    const otherCa = certificateChecks(b.ca.toString('base64'), certA, DNS);
    expect(otherCa.at(-1)!.what).toBe(
      'the serving certificate was not signed by the CA in the caBundle: the apiserver refuses the webhook (x509: certificate signed by unknown authority)',
    );
    const otherName = certificateChecks(b.ca.toString('base64'), readFileSync(b.cert, 'utf8'), DNS);
    expect(otherName.at(-1)!.what).toBe(`the serving certificate does not name ${DNS}`);
  });

  it('during a CA rotation the caBundle holds two CAs and a certificate signed by either passes', () => {
    const rotated = generateCerts(undefined, [DNS]);
    const bundle = Buffer.concat([a.ca, rotated.ca]).toString('base64');
    for (const serving of [certA, readFileSync(rotated.cert, 'utf8')]) {
      const results = certificateChecks(bundle, serving, DNS);
      expect(results.map((r) => r.ok)).toEqual([true, true]);
      expect(results[0]!.what).toMatch(/^CA certificate \(caBundle, 2 CAs\) valid/);
    }
    const unrelated = Buffer.concat([b.ca, rotated.ca]).toString('base64');
    expect(certificateChecks(unrelated, certA, DNS).at(-1)!.what).toMatch(/^the serving certificate was not signed by the CA in the caBundle/);
    const garbage = Buffer.concat([a.ca, Buffer.from('-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n')]).toString('base64');
    expect(certificateChecks(garbage, certA, DNS)[0]!.what).toBe('the caBundle is not a PEM certificate');
  });

  it('an empty caBundle or no certificate fails', () => {
    expect(certificateChecks(undefined, certA, DNS)[0]!.ok).toBe(false);
    expect(certificateChecks(caA, undefined, DNS)[1]!.what).toBe('no serving certificate: the TLS Secret has no tls.crt');
  });

  it('the APIService: ours and available, ours but unavailable, absent, or not needed', () => {
    const ours = { spec: { service: { namespace: 'kueuer-system', name: 'kueuer-webhook' } } };
    const expected = { namespace: 'kueuer-system', name: 'kueuer-webhook' };
    expect(apiServiceCheck('external', { ...ours, status: { conditions: [{ type: 'Available', status: 'True' }] } }, expected).ok).toBe(true);
    const down = apiServiceCheck('external', { ...ours, status: { conditions: [{ type: 'Available', status: 'False', message: 'no endpoints' }] } }, expected);
    expect(down).toMatchObject({ ok: false, what: 'APIService v1beta1.external.metrics.k8s.io is owned by Kueuer but not available: no endpoints' });
    expect(apiServiceCheck('external', null, expected).ok).toBe(false);
    expect(apiServiceCheck('keda', null, expected).ok).toBe(true);
  });

  it('reaches each broker of KUEUER_BACKEND: AMQP with its default ports, every Kafka bootstrap broker', () => {
    expect(brokerAddresses('amqp://u:p@rabbitmq.queues.svc/vhost')).toEqual([{ host: 'rabbitmq.queues.svc', port: 5672 }]);
    expect(brokerAddresses('amqps://u:p@mq.example:5673')).toEqual([{ host: 'mq.example', port: 5673 }]);
    expect(brokerAddresses('amqps://u:p@mq.example')).toEqual([{ host: 'mq.example', port: 5671 }]);
    expect(brokerAddresses('kafka://k1.kafka:9092,k2.kafka:9093')).toEqual([
      { host: 'k1.kafka', port: 9092 },
      { host: 'k2.kafka', port: 9093 },
    ]);
  });

  it('an IPv6 broker host loses its brackets (AMQP as Kafka), so it can be connected to', () => {
    expect(brokerAddresses('amqp://u:p@[fd00::1]:5672')).toEqual([{ host: 'fd00::1', port: 5672 }]);
    expect(brokerAddresses('amqps://u:p@[::1]')).toEqual([{ host: '::1', port: 5671 }]);
    expect(brokerAddresses('kafka://[fd00::2]:9092')).toEqual([{ host: 'fd00::2', port: 9092 }]);
  });

  it('a forbidden read names the missing permission; a timeout says the API does not answer', () => {
    const forbidden = { code: 403, message: 'secrets "kueuer-backend" is forbidden: User "dev" cannot get resource "secrets"' };
    expect(readFailure('broker unknown', { verb: 'get', resource: 'secrets', namespace: 'kueuer-system' }, forbidden)).toEqual({
      ok: false,
      what: 'broker unknown: forbidden: the user running kueuer check may not get secrets in namespace kueuer-system',
      fix: 'grant get on secrets in namespace kueuer-system to this user (kubectl auth can-i get secrets -n kueuer-system)',
    });
    expect(readFailure('RBAC unknown', { verb: 'create', resource: 'subjectaccessreviews.authorization.k8s.io' }, forbidden).what).toBe(
      'RBAC unknown: forbidden: the user running kueuer check may not create subjectaccessreviews.authorization.k8s.io',
    );
    expect(readFailure('RBAC unknown', { verb: 'create', resource: 'x' }, { message: 'no answer within 3 s', timedOutAfterS: 3 }).what).toBe(
      'RBAC unknown: the Kubernetes API did not answer within 3 s',
    );
  });

  it("tells a dry-run refused by Kueuer's webhook from one refused by PodSecurity, a quota or another webhook; the fix names the system namespace", () => {
    const unreachable = dryRunRefusal('shop', 'queues', {
      code: 500,
      message:
        'Internal error occurred: failed calling webhook "pods.kueuer.io": failed to call webhook: Post "https://kueuer-webhook.queues.svc:443/mutate": x509: certificate signed by unknown authority',
    });
    expect(unreachable.what).toMatch(/^webhook not reachable through the apiserver \(dry-run pod in namespace shop\): .*x509/);
    expect(unreachable.fix).toBe('see the certificate lines above; check the webhook pods (kubectl -n queues get pods) and their log');
    const denied = dryRunRefusal('shop', 'queues', { code: 400, message: 'admission webhook "pods.kueuer.io" denied the request: kueuer.io/concurrency: bad' });
    expect(denied.what).toMatch(/^Kueuer's webhook refused the dry-run pod in namespace shop: /);
    expect(denied.fix).toContain('kubectl -n queues get pods');
    for (const message of [
      'pods "kueuer-check-x" is forbidden: violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false',
      'pods "kueuer-check-x" is forbidden: exceeded quota: compute, requested: pods=1, used: pods=10, limited: pods=10',
      'admission webhook "validate.gatekeeper.sh" denied the request: image not allowed',
      'Internal error occurred: failed calling webhook "policy.example.com": context deadline exceeded',
    ]) {
      const other = dryRunRefusal('shop', 'queues', { code: 403, message });
      expect(other.what, message).toMatch(/^webhook not checked: the dry-run pod in namespace shop was refused before or apart from Kueuer's webhook/);
      expect(other.what).not.toMatch(/not reachable/);
    }
    expect(
      dryRunRefusal('shop', 'queues', {
        code: 403,
        message: 'pods is forbidden: User "dev" cannot create resource "pods" in API group "" in the namespace "shop"',
      }).what,
    ).toMatch(/^webhook not checked: the user running kueuer check may not create pods in namespace shop/);
  });

  it('native sidecars from 1.29; RBAC lists each denied permission; the summary counts failures', () => {
    expect(nativeSidecarCheck({ major: '1', minor: '28', gitVersion: 'v1.28.9' }).ok).toBe(false);
    expect(nativeSidecarCheck({ major: '1', minor: '29+', gitVersion: 'v1.29.1-eks' }).ok).toBe(true);
    const rbac = rbacCheck('kueuer-system', [{ permission: REQUIRED_PERMISSIONS[2]!, reason: '' }]);
    expect(rbac.what).toBe("RBAC insufficient: kueuer-webhook may not get jobs.batch (names the queue of a Job's pods)");
    expect(formatResults([rbac, nativeSidecarCheck({ major: '1', minor: '34', gitVersion: 'v1.34.0' })])).toEqual({
      passed: false,
      text:
        "FAIL RBAC insufficient: kueuer-webhook may not get jobs.batch (names the queue of a Job's pods)\n" +
        '     fix: apply the ClusterRoles and bindings of manifests/base/rbac.yaml and manifests/base/autoscaling/rbac.yaml\n' +
        'ok   native sidecars supported (Kubernetes v1.34.0 ≥ 1.29)\n' +
        'kueuer check: 1 of 2 checks failed\n',
    });
  });
});
