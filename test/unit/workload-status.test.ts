import { describe, expect, it } from 'vitest';
import { formatStatus, optsIn, selectorString, statusRow, type Workload } from '../../cli/workload-status.js';

const workload = (annotations: Record<string, string> = {}): Workload => ({
  kind: 'StatefulSet',
  namespace: 'shop',
  name: 'db',
  template: { metadata: { labels: { 'kueuer.io/inject': 'true' }, annotations }, spec: { containers: [] } },
  replicas: 3,
  readyReplicas: 2,
});
const pod = (name: string, sidecar: boolean) => ({
  metadata: { name, annotations: (sidecar ? { 'kueuer.io/status': '{"version":"0.1.0"}' } : {}) as Record<string, string> },
  spec: { containers: [{ name: 'app' }], ...(sidecar ? { initContainers: [{ name: 'kueuer-sidecar' }] } : {}) },
});

describe("kueuer status's rows", () => {
  it('desired replicas from the HPA, the queue from kueuer.io/queue, injected counts with the version', () => {
    const row = statusRow(workload({ 'kueuer.io/queue': 'orders' }), [pod('db-0', true), pod('db-1', true)], { status: { desiredReplicas: 5 } }, { value: 12 });
    expect(row).toEqual({
      namespace: 'shop',
      workload: 'statefulset/db',
      queue: 'shop.orders',
      backlog: '12',
      replicas: '2/3',
      desired: '5',
      injected: '2/2 (0.1.0)',
      notes: [],
    });
  });

  it('notes why: a pod without the sidecar, no autoscaler, a backlog not known, annotations the webhook refuses', () => {
    const row = statusRow(workload({ 'kueuer.io/concurrency': 'many' }), [pod('db-0', false)], undefined, { unknown: 'no broker' });
    expect(row.injected).toBe('0/1');
    expect(row.desired).toBe('-');
    expect(row.backlog).toBe('unknown');
    expect(row.notes).toEqual([
      'statefulset/db: the webhook refuses its pods: kueuer.io/concurrency: expected an integer from 1 to 1000, got "many"',
      'statefulset/db: backlog unknown: no broker',
      'statefulset/db: 1 pod(s) without the sidecar (db-0): created before the workload opted in or before the webhook ran; roll them: kubectl -n shop rollout restart statefulset/db',
      'statefulset/db: no autoscaler generated (kueuer.io/autoscale "false", --autoscaling off or keda, or not reconciled yet)',
    ]);
    expect(formatStatus([row]).split('\n')[0]).toBe('NAMESPACE  WORKLOAD        QUEUE    BACKLOG  READY/REPLICAS  DESIRED  INJECTED');
  });

  it('opts in by the label, or the deprecated annotation alone; "false" or a typo does not', () => {
    expect(optsIn({ metadata: { labels: { 'kueuer.io/inject': 'true' } } })).toBe(true);
    expect(optsIn({ metadata: { annotations: { 'kueuer.io/inject': 'true' } } })).toBe(true);
    expect(optsIn({ metadata: { labels: { 'kueuer.io/inject': 'false' } } })).toBe(false);
    expect(optsIn({ metadata: { labels: { 'kueuer.io/inject': 'True' } } })).toBe(false);
    expect(formatStatus([])).toMatch(/^No opted-in workloads/);
  });

  it('a forbidden pod list or HPA read shows that cell as unknown with a note; the rest of the row stays', () => {
    const row = statusRow(
      workload(),
      { unknown: 'forbidden: this user may not list pods in namespace shop' },
      { unknown: 'forbidden: may not get hpa' },
      { value: 3 },
    );
    expect(row).toMatchObject({
      injected: 'unknown',
      desired: 'unknown',
      backlog: '3',
      replicas: '2/3',
      notes: [
        'statefulset/db: pods unknown: forbidden: this user may not list pods in namespace shop',
        'statefulset/db: desired replicas unknown: forbidden: may not get hpa',
      ],
    });
  });

  it('the pod selector keeps matchExpressions (In, NotIn, Exists, DoesNotExist), so it never becomes "every pod"', () => {
    expect(selectorString({ matchExpressions: [{ key: 'app', operator: 'In', values: ['db', 'cache'] }] })).toBe('app in (db,cache)');
    expect(
      selectorString({
        matchLabels: { tier: 'data' },
        matchExpressions: [
          { key: 'env', operator: 'NotIn', values: ['dev'] },
          { key: 'owner', operator: 'Exists' },
          { key: 'legacy', operator: 'DoesNotExist' },
        ],
      }),
    ).toBe('tier=data,env notin (dev),owner,!legacy');
    expect(() => selectorString({ matchExpressions: [{ key: 'a', operator: 'Gt', values: ['1'] }] })).toThrow(/not one of In, NotIn, Exists, DoesNotExist/);
  });
});
