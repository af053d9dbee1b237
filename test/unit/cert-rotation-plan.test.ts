/** The self-issuer's pure decisions (webhook/certs/rotation-plan.ts) on real certificates, at chosen times. */
import { X509Certificate } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { certsFromData, dataFromCerts } from '../../webhook/certs/cert-secret.js';
import { issueCa, issueServingCert, type KeyPair } from '../../webhook/certs/issue.js';
import { bundleWith, planCerts, renewalDueAt, type CertPolicy, type StoredCerts } from '../../webhook/certs/rotation-plan.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const policy: CertPolicy = { caLifetimeMs: 300 * DAY, servingLifetimeMs: 90 * DAY, dnsNames: ['kueuer-webhook.kueuer-system.svc', 'kueuer-webhook'] };
const t0 = Date.parse('2026-01-01T00:00:00Z');

describe('planCerts', () => {
  let ca: KeyPair;
  let stored: StoredCerts;
  beforeAll(async () => {
    ca = await issueCa('test-ca', policy.caLifetimeMs, t0);
    stored = { ca, bundle: [ca.cert], serving: await issueServingCert(ca, policy.dnsNames, policy.servingLifetimeMs, t0) };
  });

  it('issues everything when nothing is stored', () => {
    expect(planCerts(null, policy, t0).action).toBe('issue-all');
  });

  it('does nothing while both are young, and names the next renewal: two thirds into the serving lifetime', () => {
    const plan = planCerts(stored, policy, t0 + HOUR);
    expect(plan.action).toBe('none');
    const due = renewalDueAt(new X509Certificate(stored.serving.cert));
    expect(plan.action === 'none' && plan.nextCheckAt).toBe(due);
    expect(Math.abs(due - (t0 + 60 * DAY))).toBeLessThan(7 * DAY); // 2/3 of 90 days, less the backdating
  });

  it('renews the serving certificate at two thirds of its lifetime, the CA at two thirds of its own', () => {
    expect(planCerts(stored, policy, t0 + 61 * DAY).action).toBe('renew-serving');
    expect(planCerts(stored, policy, t0 + 201 * DAY).action).toBe('rotate-ca');
  });

  it('renews at once when the configured lifetime became shorter than the stored one', () => {
    expect(planCerts(stored, { ...policy, servingLifetimeMs: DAY }, t0 + HOUR)).toMatchObject({ action: 'renew-serving' });
    expect(planCerts(stored, { ...policy, caLifetimeMs: 30 * DAY }, t0 + HOUR)).toMatchObject({ action: 'rotate-ca' });
  });

  it('renews a serving certificate that lacks a name, or whose CA is not trusted', async () => {
    expect(planCerts(stored, { ...policy, dnsNames: [...policy.dnsNames, 'other.example'] }, t0 + HOUR)).toMatchObject({
      action: 'renew-serving',
      reason: 'the serving certificate lacks other.example',
    });
    const stranger = await issueCa('stranger', policy.caLifetimeMs, t0);
    expect(planCerts({ ...stored, bundle: [stranger.cert] }, policy, t0 + HOUR).action).toBe('renew-serving');
  });

  it('starts over when the CA expired or its key does not match', async () => {
    expect(planCerts(stored, policy, t0 + 301 * DAY).action).toBe('issue-all');
    const other = await issueCa('other', policy.caLifetimeMs, t0);
    expect(planCerts({ ...stored, ca: { cert: ca.cert, key: other.key } }, policy, t0 + HOUR).action).toBe('issue-all');
  });

  it('a new CA leads the bundle, older ones stay until they expire, and the Secret round-trips it', async () => {
    const next = await issueCa('next', policy.caLifetimeMs, t0 + 200 * DAY);
    const bundle = bundleWith(next.cert, stored.bundle, t0 + 200 * DAY);
    expect(bundle).toEqual([next.cert, ca.cert]);
    expect(bundleWith(next.cert, bundle, t0 + 301 * DAY)).toEqual([next.cert]);
    const rotated = { ca: next, bundle, serving: stored.serving };
    expect(certsFromData(dataFromCerts(rotated))).toEqual(rotated);
    // The old serving certificate stays valid: its CA is still in the bundle.
    expect(planCerts(rotated, policy, t0 + 200 * DAY + HOUR).action).toBe('renew-serving'); // it is past two thirds by now
    expect(planCerts(rotated, policy, t0 + 200 * DAY + HOUR)).not.toMatchObject({ reason: 'the serving certificate is not signed by a trusted CA' });
  });
});
