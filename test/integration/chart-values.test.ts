/**
 * The Helm chart's guardrails and values (issue 22, point 20), rendered by the
 * real helm (scripts/dev/helm.sh): a choice that cannot work fails the render with
 * a message naming the value and the fix, instead of installing something that
 * fails later (an empty caBundle, a placeholder broker URL, a request timeout
 * the responders' drain cuts off); placement, size and pull settings reach
 * both Deployments; KEDA's verbs are granted in keda mode only.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { loadAllYaml } from '@kubernetes/client-node';
import { describe, expect, inject, it } from 'vitest';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const chart = join(import.meta.dirname, '..', '..', 'charts', 'kueuer');
const RABBITMQ = ['broker.type=rabbitmq', 'broker.url=amqp://app:secret@mq.example:5672'];

describe('Helm chart values and guardrails (charts/kueuer)', () => {
  const helmBin = inject('helmBin');
  const helm = (args: string[], values: string[]) => {
    const r = spawnSync(helmBin, [...args, ...values.flatMap((v) => ['--set', v])], { encoding: 'utf8' });
    return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
  };
  const template = (values: string[], namespace = 'kueuer-system') => helm(['template', 'kueuer', chart, '--namespace', namespace], values);
  const render = (values: string[], namespace?: string): Json[] => {
    const r = template(values, namespace);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    return (loadAllYaml(r.stdout) as Json[]).filter((o) => o);
  };
  const refused = (values: string[], message: string) => {
    const r = template(values);
    expect(r.code, r.stdout).not.toBe(0);
    expect(r.stderr).toContain(message);
  };
  const find = (objects: Json[], kind: string, name: string) => objects.find((o) => o.kind === kind && o.metadata.name === name)!;
  const podSpec = (objects: Json[], name: string) => find(objects, 'Deployment', name).spec.template.spec as Json;

  it('certificates.source=secret without certificates.caBundle fails the render, saying what to set', () => {
    refused(['certificates.source=secret'], 'certificates.source=secret needs certificates.caBundle: the base64 of the PEM CA');
    const ca = Buffer.from('-----BEGIN CERTIFICATE-----\n').toString('base64');
    const objects = render(['certificates.source=secret', `certificates.caBundle=${ca}`]);
    expect(find(objects, 'MutatingWebhookConfiguration', 'kueuer').webhooks.map((w: Json) => w.clientConfig.caBundle)).toEqual([ca, ca]);
  });

  it('broker.type without broker.url fails the render (no placeholder URL in the Secret)', () => {
    refused(['broker.type=rabbitmq'], 'broker.type=rabbitmq needs broker.url (KUEUER_BACKEND, e.g. amqp://user:pass@rabbitmq.queues.svc:5672)');
    refused(['broker.type=kafka'], 'broker.type=kafka needs broker.url (KUEUER_BACKEND, e.g. kafka://');
    const secret = find(render(RABBITMQ), 'Secret', 'kueuer-backend');
    const data = Object.fromEntries(Object.entries(secret.data as Record<string, string>).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()]));
    // No management URL given: none written, so the webhook's own default (the AMQP host, port 15672) applies.
    expect(data).toEqual({ KUEUER_BACKEND: 'amqp://app:secret@mq.example:5672' });
    const withManagement = find(render([...RABBITMQ, 'broker.rabbitmq.managementUrl=http://app:secret@mq.example:15672']), 'Secret', 'kueuer-backend');
    expect(Buffer.from(withManagement.data.KUEUER_RABBITMQ_MANAGEMENT_URL, 'base64').toString()).toBe('http://app:secret@mq.example:15672');
  });

  it('the drain timeout and grace period are values; config.timeout above the drain, or a grace period too short for it, fails the render', () => {
    refused(['config.timeout=10m'], 'config.timeout (10m) is longer than responder.drainTimeout (300s)');
    refused(['responder.drainTimeout=600s'], 'responder.terminationGracePeriodSeconds (320) must be at least responder.drainTimeout (600s) + 15 s = 615');
    refused(['config.timeout=ten'], 'config.timeout: expected a duration such as 500ms, 60s or 5m, got "ten"');
    const objects = render(['config.timeout=10m', 'responder.drainTimeout=10m', 'responder.terminationGracePeriodSeconds=620']);
    const pod = podSpec(objects, 'kueuer-responder');
    expect(pod.terminationGracePeriodSeconds).toBe(620);
    expect(pod.containers[0].env.find((e: Json) => e.name === 'KUEUER_DRAIN_TIMEOUT').value).toBe('10m');
    expect(find(objects, 'ConfigMap', 'kueuer-config').data.KUEUER_TIMEOUT).toBe('10m');
  });

  it("keda mode points KUEUER_BACKLOG_URL at the webhook Service of the release's namespace", () => {
    const config = (namespace: string) => find(render(['autoscaling.mode=keda'], namespace), 'ConfigMap', 'kueuer-config').data as Json;
    expect(config('queues').KUEUER_BACKLOG_URL).toBe('https://kueuer-webhook.queues.svc/backlog');
    expect(config('kueuer-system').KUEUER_BACKLOG_URL).toBe('https://kueuer-webhook.kueuer-system.svc/backlog');
    expect(find(render([], 'queues'), 'ConfigMap', 'kueuer-config').data.KUEUER_BACKLOG_URL).toBeUndefined();
  });

  it("KEDA's scaledobjects verbs are granted in keda mode only", () => {
    const kedaRules = (mode: string) =>
      find(render([`autoscaling.mode=${mode}`]), 'ClusterRole', 'kueuer-autoscaler').rules.filter((r: Json) => r.apiGroups.includes('keda.sh'));
    for (const mode of ['external', 'prometheus-adapter', 'off']) expect(kedaRules(mode), mode).toEqual([]);
    expect(kedaRules('keda')).toEqual([{ apiGroups: ['keda.sh'], resources: ['scaledobjects'], verbs: ['list', 'watch', 'create', 'update', 'delete'] }]);
  });

  it('replicas, resources, nodeSelector, tolerations, affinity, priorityClassName and imagePullSecrets reach the webhook and responder pods', () => {
    const affinity = {
      nodeAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'pool', operator: 'In', values: ['system'] }] }] },
      },
    };
    const objects = render([
      'imagePullSecrets[0].name=regcred',
      'webhook.replicas=3',
      'webhook.resources.requests.cpu=200m',
      'webhook.nodeSelector.pool=system',
      'webhook.tolerations[0].key=dedicated',
      'webhook.tolerations[0].operator=Exists',
      'webhook.priorityClassName=system-cluster-critical',
      'responder.replicas=4',
      'responder.maxReplicas=20',
      'responder.resources.limits.memory=1Gi',
      'responder.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].key=pool',
      'responder.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].operator=In',
      'responder.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].values[0]=system',
      'responder.priorityClassName=high',
    ]);
    const webhook = podSpec(objects, 'kueuer-webhook');
    const responder = podSpec(objects, 'kueuer-responder');
    expect(find(objects, 'Deployment', 'kueuer-webhook').spec.replicas).toBe(3);
    expect(find(objects, 'Deployment', 'kueuer-responder').spec.replicas).toBe(4);
    expect(find(objects, 'HorizontalPodAutoscaler', 'kueuer-responder').spec).toMatchObject({ minReplicas: 4, maxReplicas: 20 });
    for (const pod of [webhook, responder]) expect(pod.imagePullSecrets).toEqual([{ name: 'regcred' }]);
    expect(webhook.containers[0].resources).toEqual({ requests: { cpu: '200m', memory: '64Mi' }, limits: { memory: '256Mi' } });
    expect(webhook.nodeSelector).toEqual({ pool: 'system' });
    expect(webhook.tolerations).toEqual([{ key: 'dedicated', operator: 'Exists' }]);
    expect(webhook.priorityClassName).toBe('system-cluster-critical');
    expect(responder.containers[0].resources.limits).toEqual({ memory: '1Gi' });
    expect(responder.affinity).toEqual(affinity);
    expect(responder.priorityClassName).toBe('high');
    // The defaults add none of them (the kustomize comparison in install-artifacts.test.ts checks the rest).
    for (const pod of [podSpec(render([]), 'kueuer-webhook'), podSpec(render([]), 'kueuer-responder')])
      for (const key of ['imagePullSecrets', 'nodeSelector', 'tolerations', 'affinity', 'priorityClassName']) expect(pod[key], key).toBeUndefined();
  });
});
