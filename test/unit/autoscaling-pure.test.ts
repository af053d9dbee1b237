import { describe, expect, it } from 'vitest';
import { autoscalerName, decideWorkload, desiredHpa, desiredScaledObject, type Workload } from '../../webhook/autoscaling/desired-objects.js';
import { queueFromSelector } from '../../webhook/autoscaling/external-metrics-api.js';
import { managementUrlFor } from '../../shared/transport/amqp/depth.js';
import { autoscalerFingerprint } from '../../webhook/autoscaling/autoscaler-store.js';
import { AUTOSCALING_DEFAULTS, parseAutoscalingSettings } from '../../webhook/autoscaling/settings.js';

const workload = (
  annotations: Record<string, string> = {},
  template: Record<string, string> = { 'kueuer.io/inject': 'true' },
  kind: Workload['kind'] = 'Deployment',
): Workload => ({
  kind,
  metadata: { name: 'orders', namespace: 'shop', uid: 'uid-1', annotations },
  spec: { replicas: 2, template: { metadata: { annotations: template } } },
});

describe('autoscaling annotations', () => {
  it('has documented defaults', () => {
    expect(parseAutoscalingSettings(undefined, undefined)).toEqual({ ok: true, value: AUTOSCALING_DEFAULTS });
    expect(AUTOSCALING_DEFAULTS).toEqual({
      enabled: true,
      minReplicas: 1,
      maxReplicas: 10,
      targetBacklog: 5,
      scaleDownStabilizationSeconds: 300,
      idleCooldownSeconds: 300,
    });
  });

  it('reads the workload over its pod template', () => {
    const parsed = parseAutoscalingSettings(
      { 'kueuer.io/max-replicas': '8', 'kueuer.io/scale-down-stabilization': '2m' },
      { 'kueuer.io/max-replicas': '3', 'kueuer.io/min-replicas': '0', 'kueuer.io/idle-cooldown': '90s', 'kueuer.io/target-backlog': '20' },
    );
    expect(parsed).toEqual({
      ok: true,
      value: { enabled: true, minReplicas: 0, maxReplicas: 8, targetBacklog: 20, scaleDownStabilizationSeconds: 120, idleCooldownSeconds: 90 },
    });
  });

  it.each([
    [{ 'kueuer.io/max-replicas': 'lots' }, /kueuer.io\/max-replicas: expected an integer/],
    [{ 'kueuer.io/max-replicas': '0' }, /kueuer.io\/max-replicas: expected an integer from 1/],
    [{ 'kueuer.io/min-replicas': '5', 'kueuer.io/max-replicas': '2' }, /min-replicas \(5\) is above kueuer.io\/max-replicas \(2\)/],
    [{ 'kueuer.io/scale-down-stabilization': '2h' }, /scale-down-stabilization: expected a duration from 0 ms to 3600000 ms/],
    [{ 'kueuer.io/autoscale': 'no' }, /kueuer.io\/autoscale: "no" is not accepted/],
  ])('refuses %o', (annotations, message) => {
    const parsed = parseAutoscalingSettings(annotations, undefined);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.problems.join('; ')).toMatch(message);
  });
});

describe('which workloads get an autoscaler', () => {
  it('only injected ones, unless they opt out', () => {
    expect(decideWorkload(workload({}, {})).kind).toBe('none');
    expect(decideWorkload(workload({}, { 'kueuer.io/inject': 'false' })).kind).toBe('none');
    expect(decideWorkload(workload({ 'kueuer.io/autoscale': 'false' })).kind).toBe('none');
    const d = decideWorkload(workload({}, { 'kueuer.io/inject': 'true', 'kueuer.io/queue': 'jobs' }));
    expect(d.kind === 'scale' && d.plan.queue).toBe('shop.jobs');
  });

  it('refuses a bad pod annotation, and a queue too long for a label', () => {
    expect(decideWorkload(workload({}, { 'kueuer.io/inject': 'true', 'kueuer.io/concurrency': 'many' }))).toMatchObject({
      kind: 'refuse',
      message: expect.stringMatching(/kueuer.io\/concurrency/),
    });
    expect(decideWorkload(workload({}, { 'kueuer.io/inject': 'true', 'kueuer.io/queue': 'q'.repeat(70) }))).toMatchObject({
      kind: 'refuse',
      message: expect.stringMatching(/too long for a metric label/),
    });
  });
});

describe('the generated HPA', () => {
  const plan = () => {
    const d = decideWorkload(workload({ 'kueuer.io/max-replicas': '12', 'kueuer.io/target-backlog': '4', 'kueuer.io/min-replicas': '0' }));
    if (d.kind !== 'scale') throw new Error('expected a plan');
    return d.plan;
  };

  it('targets the backlog per replica, owned by the workload', () => {
    expect(autoscalerName(workload())).toBe('kueuer-deploy-orders');
    expect(autoscalerName(workload({}, {}, 'StatefulSet'))).toBe('kueuer-sts-orders');
    const hpa = desiredHpa(plan());
    expect(hpa.metadata).toEqual({
      name: 'kueuer-deploy-orders',
      namespace: 'shop',
      labels: { 'app.kubernetes.io/managed-by': 'kueuer', 'kueuer.io/queue': 'shop.orders' },
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'Deployment', name: 'orders', uid: 'uid-1', controller: true, blockOwnerDeletion: true }],
    });
    expect(hpa.spec).toEqual({
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'orders' },
      minReplicas: 1, // min 0: Kueuer does 0↔1, the HPA 1↔N
      maxReplicas: 12,
      metrics: [
        {
          type: 'External',
          external: {
            metric: { name: 'kueuer_queue_backlog', selector: { matchLabels: { queue: 'shop.orders' } } },
            target: { type: 'AverageValue', averageValue: '4' },
          },
        },
      ],
      behavior: { scaleDown: { stabilizationWindowSeconds: 300 } },
    });
  });

  it("caps max replicas at a Kafka topic's partitions", () => {
    expect(desiredHpa(plan(), 6).spec!.maxReplicas).toBe(6);
    expect(desiredHpa(plan(), 50).spec!.maxReplicas).toBe(12);
  });

  it('in keda mode, is a ScaledObject on the /backlog endpoint that does 0↔1 itself', () => {
    const so = desiredScaledObject(plan(), 'https://kueuer-webhook.kueuer-system.svc/backlog', 6) as { spec: Record<string, unknown> };
    expect(so.spec).toMatchObject({
      minReplicaCount: 0,
      maxReplicaCount: 6,
      cooldownPeriod: 300,
      triggers: [
        {
          type: 'metrics-api',
          metricType: 'AverageValue',
          metadata: { url: 'https://kueuer-webhook.kueuer-system.svc/backlog/shop.orders', valueLocation: 'backlog', targetValue: '4' },
        },
      ],
    });
  });

  it('ignores server-side defaults when deciding whether to update', () => {
    const want = desiredHpa(plan());
    const stored = {
      ...want,
      metadata: { ...want.metadata, resourceVersion: '7', uid: 'x' },
      spec: { ...want.spec!, behavior: { scaleDown: { stabilizationWindowSeconds: 300, selectPolicy: 'Max' }, scaleUp: { stabilizationWindowSeconds: 0 } } },
    };
    expect(autoscalerFingerprint(stored as never)).toBe(autoscalerFingerprint(want as never));
    expect(autoscalerFingerprint({ ...stored, spec: { ...stored.spec, maxReplicas: 3 } } as never)).not.toBe(autoscalerFingerprint(want as never));
  });
});

describe('metrics API details', () => {
  it("reads the queue from the HPA's selector", () => {
    expect(queueFromSelector('queue=shop.orders')).toBe('shop.orders');
    expect(queueFromSelector('queue in (shop.orders)')).toBe('shop.orders');
    expect(queueFromSelector('queue!=x')).toBeNull();
    expect(queueFromSelector(undefined)).toBeNull();
  });

  it('finds the RabbitMQ management API from the AMQP URL', () => {
    expect(managementUrlFor('amqp://u:p%40ss@rabbit.svc:5672/prod')).toEqual({
      base: 'http://rabbit.svc:15672',
      vhost: 'prod',
      authorization: `Basic ${Buffer.from('u:p@ss').toString('base64')}`,
    });
    expect(managementUrlFor('amqps://u:p@rabbit:5671', 'https://mgmt:443')).toMatchObject({ base: 'https://mgmt', vhost: '/' });
  });
});
