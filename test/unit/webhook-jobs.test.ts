/**
 * The default queue of a Job's pods (issue 12, item 14): named after the
 * CronJob (or the Job), found by reading the Job once, within a bound.
 */
import type { V1ObjectMeta, V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { decidePod } from '../../webhook/admission/pod-injection.js';
import { jobOwner, JobWorkloads, workloadOfJob } from '../../webhook/admission/workload-queue.js';
import { testInjectionConfig } from '../helpers/webhook.js';

const jobRef = { apiVersion: 'batch/v1', kind: 'Job', name: 'nightly-29000000', uid: 'job-uid', controller: true };
const cronJobMeta: V1ObjectMeta = {
  name: 'nightly-29000000',
  namespace: 'shop',
  uid: 'job-uid',
  ownerReferences: [{ apiVersion: 'batch/v1', kind: 'CronJob', name: 'nightly', uid: 'cj', controller: true }],
};

function jobPod(annotations: Record<string, string> = {}): V1Pod {
  return {
    metadata: { generateName: 'nightly-29000000-', ownerReferences: [jobRef], labels: { 'kueuer.io/inject': 'true' }, annotations },
    spec: { containers: [{ name: 'app', image: 'x', ports: [{ containerPort: 8080 }] }] },
  };
}

describe('the workload of a Job', () => {
  it('is the CronJob that created it, else the prefix it was generated from, else its name', () => {
    expect(workloadOfJob(cronJobMeta)).toBe('nightly');
    expect(workloadOfJob({ name: 'report-x7k2p', generateName: 'report-' })).toBe('report');
    expect(workloadOfJob({ name: 'reindex-2024' })).toBe('reindex-2024');
  });

  it('is looked up only for a pod whose controller is a batch Job', () => {
    expect(jobOwner(jobPod().metadata!)).toEqual(jobRef);
    expect(jobOwner({ ownerReferences: [{ apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'db', uid: 'u', controller: true }] })).toBeUndefined();
    expect(jobOwner({ name: 'solo' })).toBeUndefined();
  });
});

describe('decidePod for a Job-owned pod', () => {
  it('asks for the Job, then names the queue after the CronJob', () => {
    expect(decidePod(jobPod(), 'shop', testInjectionConfig)).toEqual({ kind: 'lookup-job', namespace: 'shop', owner: jobRef });
    const d = decidePod(jobPod(), 'shop', testInjectionConfig, { name: 'nightly' });
    expect(d.kind === 'patch' && d.status.queue).toBe('shop.nightly');
  });

  it('needs no lookup with kueuer.io/queue, or without kueuer.io/inject', () => {
    const d = decidePod(jobPod({ 'kueuer.io/queue': 'reports' }), 'shop', testInjectionConfig);
    expect(d.kind === 'patch' && d.status.queue).toBe('shop.reports');
    const off = jobPod();
    off.metadata!.labels!['kueuer.io/inject'] = 'false';
    expect(decidePod(off, 'shop', testInjectionConfig).kind).toBe('skip');
  });

  it('refuses with the reason and the fix when the Job could not be read', () => {
    const d = decidePod(jobPod(), 'shop', testInjectionConfig, { problem: 'the Job does not exist' });
    expect(d).toEqual({
      kind: 'refuse',
      message:
        "cannot name the default queue of a pod of Job shop/nightly-29000000 (named after the Job's CronJob, else the Job): the Job does not exist; " +
        'set kueuer.io/queue on the pod template (of a CronJob: spec.jobTemplate.spec.template)',
    });
  });
});

describe('JobWorkloads', () => {
  it('reads each Job once, also for pods admitted at the same time', async () => {
    let reads = 0;
    const jobs = new JobWorkloads(async () => {
      reads++;
      await new Promise((r) => setTimeout(r, 10));
      return cronJobMeta;
    });
    const results = await Promise.all([jobs.resolve('shop', jobRef), jobs.resolve('shop', jobRef)]);
    expect(results).toEqual([{ name: 'nightly' }, { name: 'nightly' }]);
    expect(await jobs.resolve('shop', jobRef)).toEqual({ name: 'nightly' });
    expect(reads).toBe(1);
  });

  it('gives up within its bound on an API that does not answer, and asks again next time', async () => {
    let reads = 0;
    const jobs = new JobWorkloads(() => {
      reads++;
      return new Promise(() => undefined);
    }, 50);
    const started = Date.now();
    expect(await jobs.resolve('shop', jobRef)).toEqual({ problem: 'reading the Job: the API did not answer within 50 ms' });
    expect(Date.now() - started).toBeLessThan(1000);
    await jobs.resolve('shop', jobRef);
    expect(reads).toBe(2);
  });

  it.each([
    [403, 'the webhook may not read Jobs (HTTP 403); grant its ServiceAccount get on jobs.batch'],
    [404, 'the Job does not exist'],
    [500, 'reading the Job failed: HTTP 500: boom'],
  ])('names an API error %s', async (code, problem) => {
    const jobs = new JobWorkloads(() => Promise.reject(Object.assign(new Error('boom'), { code })));
    expect(await jobs.resolve('shop', jobRef)).toEqual({ problem });
  });

  it('does not trust a Job of the same name with another uid', async () => {
    const jobs = new JobWorkloads(async () => ({ ...cronJobMeta, uid: 'newer' }));
    expect(await jobs.resolve('shop', jobRef)).toEqual({ problem: 'the Job of that name is not the one that owns the pod (it was re-created)' });
  });
});
