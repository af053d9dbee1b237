/**
 * mutate() as the apiserver calls it: what each admission logs, what a
 * dry-run leaves behind, and which queue names are refused (issue 22: 9, 14, 21).
 */
import { Writable } from 'node:stream';
import type { V1Pod, V1Service } from '@kubernetes/client-node';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { mayLeaveTraces, type AdmissionRequest } from '../../webhook/admission/admission-review.js';
import { mutate, type PortRegistry } from '../../webhook/admission/mutate.js';
import { responderOptions } from '../../responder/config.js';
import { ConfigError, parseOptions } from '../../shared/options.js';
import { isReplyAddress } from '../../shared/transport/transport.js';
import { sidecarOptions } from '../../sidecar/config.js';
import { EVENT_MESSAGE_MAX, eventMessage } from '../../webhook/admission/refusal-events.js';
import { JobWorkloads } from '../../webhook/admission/workload-queue.js';
import { silentLog } from '../helpers/stack.js';
import { testInjectionConfig } from '../helpers/webhook.js';

const noJobs = new JobWorkloads(async () => {
  throw new Error('no Job reads in this test');
});

/** A pino logger whose lines are kept, parsed. */
function capturingLog(): { log: pino.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  return { log: pino({ level: 'info' }, stream), lines };
}

function podRequest(pod: V1Pod, extra: Partial<AdmissionRequest> = {}): AdmissionRequest {
  return {
    uid: 'u-1',
    kind: { group: '', version: 'v1', kind: 'Pod' },
    namespace: pod.metadata?.namespace ?? 'shop',
    operation: 'CREATE',
    object: pod,
    ...extra,
  };
}

function appPod(namespace: string, labels: Record<string, unknown>, annotations: Record<string, string> = {}, preStop = false): V1Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'api', namespace, labels: labels as Record<string, string>, annotations },
    spec: {
      containers: [
        {
          name: 'app',
          image: 'example.com/api:1',
          ports: [{ containerPort: 8080 }],
          ...(preStop ? { lifecycle: { preStop: { exec: { command: ['sleep', '5'] } } } } : {}),
        },
      ],
    },
  };
}

describe('admission warnings in the log (issue 22, item 21)', () => {
  it('logs the drain-hook warning as what it is, not as a deprecated opt-in', async () => {
    const { log, lines } = capturingLog();
    const { response } = await mutate(
      podRequest(appPod('shop', { 'kueuer.io/inject': 'true' }, {}, true)),
      testInjectionConfig,
      { usedPorts: () => new Set() },
      noJobs,
      log,
    );
    expect(response.allowed).toBe(true);
    expect(response.warnings).toHaveLength(1);
    const warned = lines.filter((l) => l.level === 40);
    expect(warned).toHaveLength(1);
    expect(warned[0]!.msg).toBe(response.warnings![0]);
    expect(warned[0]!.warning).toBe('admission');
    expect(lines.some((l) => String(l.msg).includes('deprecated'))).toBe(false);
  });

  it('logs each warning on its own line; the deprecated opt-in still says so', async () => {
    const { log, lines } = capturingLog();
    const pod = appPod('shop', {}, { 'kueuer.io/inject': 'true' }, true);
    const { response } = await mutate(podRequest(pod), testInjectionConfig, { usedPorts: () => new Set() }, noJobs, log);
    expect(response.warnings).toHaveLength(2);
    const warned = lines.filter((l) => l.level === 40);
    expect(warned.map((l) => l.warning)).toEqual(['deprecated-opt-in', 'admission']);
    expect(warned.map((l) => l.msg)).toEqual(response.warnings);
  });
});

describe('a label value that YAML read as a boolean (issue 22, item 21)', () => {
  it('tells the user to quote kueuer.io/inject: true', async () => {
    const { response } = await mutate(
      podRequest(appPod('shop', { 'kueuer.io/inject': true })),
      testInjectionConfig,
      { usedPorts: () => new Set() },
      noJobs,
      silentLog,
    );
    expect(response.allowed).toBe(false);
    expect(response.status?.message).toContain('label kueuer.io/inject: the YAML boolean true is not a string; quote it: kueuer.io/inject: "true"');
  });

  it('says the same of an annotation given as a YAML number', async () => {
    const pod = appPod('shop', { 'kueuer.io/inject': 'true' }, { 'kueuer.io/concurrency': 4 as unknown as string });
    const { response } = await mutate(podRequest(pod), testInjectionConfig, { usedPorts: () => new Set() }, noJobs, silentLog);
    expect(response.allowed).toBe(false);
    expect(response.status?.code).toBe(400);
    expect(response.status?.message).toContain('kueuer.io/concurrency: the YAML number 4 is not a string; quote it: kueuer.io/concurrency: "4"');
  });
});

/** A registry that records every reservation written. */
function recordingPorts(held: number[] = []): PortRegistry & { reserved: Array<[string, number]>; refreshed: number } {
  const reserved: Array<[string, number]> = [];
  const state = { reserved, refreshed: 0 };
  return {
    get reserved() {
      return state.reserved;
    },
    get refreshed() {
      return state.refreshed;
    },
    refresh: async () => {
      state.refreshed++;
    },
    usedPorts: () => new Set(held),
    reserve: async (service, port) => {
      reserved.push([service, port]);
      return true;
    },
  };
}

function service(namespace: string, annotations: Record<string, string> = {}): V1Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'web', namespace, labels: { 'kueuer.io/inject': 'true' }, annotations },
    spec: { selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 8080 as never, protocol: 'TCP' }] },
  };
}

/** As the apiserver sends it: a UUID uid and the requesting user. */
function serviceRequest(svc: V1Service, extra: Partial<AdmissionRequest> = {}): AdmissionRequest {
  return {
    uid: 'e911857d-c318-11e8-bbad-025000000001',
    kind: { group: '', version: 'v1', kind: 'Service' },
    namespace: svc.metadata!.namespace!,
    operation: 'CREATE',
    userInfo: { username: 'kubernetes-admin', groups: ['system:masters'] },
    object: svc,
    ...extra,
  };
}

describe('queue names never fall into the reply namespace (issue 22, item 9)', () => {
  const REPLY = 'falls in the reply namespace kueuer.reply.*';

  it('refuses a pod in namespace kueuer whose kueuer.io/queue makes its queue kueuer.reply.x', async () => {
    expect(isReplyAddress('kueuer.reply.x')).toBe(true);
    const { response } = await mutate(
      podRequest(appPod('kueuer', { 'kueuer.io/inject': 'true' }, { 'kueuer.io/queue': 'reply.x' })),
      testInjectionConfig,
      { usedPorts: () => new Set() },
      noJobs,
      silentLog,
    );
    expect(response.allowed).toBe(false);
    expect(response.status?.code).toBe(400);
    expect(response.status?.message).toContain(`kueuer.io/queue: the queue "kueuer.reply.x" ${REPLY}`);
    expect(response.status?.message).toContain('set kueuer.io/queue to a name that does not start with "reply."');
  });

  it('refuses a pod of Deployment reply.web in namespace kueuer (its default queue), saying to set kueuer.io/queue', async () => {
    const pod = appPod('kueuer', { 'kueuer.io/inject': 'true', 'pod-template-hash': 'abc12' });
    pod.metadata!.ownerReferences = [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'reply.web-abc12', uid: 'rs-1', controller: true }];
    const { response } = await mutate(podRequest(pod), testInjectionConfig, { usedPorts: () => new Set() }, noJobs, silentLog);
    expect(response.allowed).toBe(false);
    expect(response.status?.message).toContain(`the queue "kueuer.reply.web" ${REPLY}`);
  });

  it('refuses a pod and a Service of namespace reply: on Kafka their queue reply.* would be the topic kueuer.reply.*, among the inboxes', async () => {
    const KAFKA = 'would be Kafka\'s topic "kueuer.reply.web", which falls in the reply namespace kueuer.reply.*';
    const FIX = 'Kueuer cannot queue for the namespace "reply" (every queue of a namespace starts with its name): run the workload in another namespace';
    const pod = await mutate(
      podRequest(appPod('reply', { 'kueuer.io/inject': 'true' }, { 'kueuer.io/queue': 'web' })),
      testInjectionConfig,
      { usedPorts: () => new Set() },
      noJobs,
      silentLog,
    );
    expect(pod.response.allowed).toBe(false);
    expect(pod.response.status?.message).toContain(`the queue "reply.web" ${KAFKA}`);
    expect(pod.response.status?.message).toContain(FIX);
    const ports = recordingPorts();
    const svc = await mutate(serviceRequest(service('reply', { 'kueuer.io/queue': 'web' })), testInjectionConfig, ports, noJobs, silentLog);
    expect(svc.response.allowed).toBe(false);
    expect(svc.response.status?.message).toContain(`the queue "reply.web" ${KAFKA}`);
    expect(svc.response.status?.message).toContain(FIX);
    expect(ports.reserved).toEqual([]);
  });

  it('admits the same names anywhere they do not form the prefix', async () => {
    for (const [ns, queue] of [
      ['kueuer', 'replyx'],
      ['kueuer', 'reply'],
      ['shop', 'reply.x'],
    ] as const) {
      const { response } = await mutate(
        podRequest(appPod(ns, { 'kueuer.io/inject': 'true' }, { 'kueuer.io/queue': queue })),
        testInjectionConfig,
        { usedPorts: () => new Set() },
        noJobs,
        silentLog,
      );
      expect(response.allowed, `${ns}.${queue}`).toBe(true);
    }
  });

  it('refuses such a Service before any responder port is reserved for it', async () => {
    const ports = recordingPorts();
    const { response } = await mutate(serviceRequest(service('kueuer', { 'kueuer.io/queue': 'reply.x' })), testInjectionConfig, ports, noJobs, silentLog);
    expect(response.allowed).toBe(false);
    expect(response.status?.code).toBe(400);
    expect(response.status?.message).toContain(`kueuer.io/queue: the queue "kueuer.reply.x" ${REPLY}`);
    expect(ports.reserved).toEqual([]);
    const ok = await mutate(serviceRequest(service('kueuer', { 'kueuer.io/queue': 'web' })), testInjectionConfig, ports, noJobs, silentLog);
    expect(ok.response.allowed).toBe(true);
    expect(ports.reserved).toHaveLength(1);
  });

  it('the sidecar and the responder refuse such a --queue at start', () => {
    for (const [specs, args] of [
      [sidecarOptions, ['--app', '127.0.0.1:8080', '--backend', 'amqp://h']],
      [responderOptions, ['--backend', 'amqp://h']],
    ] as const) {
      const problemsWith = (queue: string): string[] => {
        try {
          parseOptions(specs, [...args, '--queue', queue], {});
          return [];
        } catch (err) {
          if (!(err instanceof ConfigError)) throw err;
          return err.problems;
        }
      };
      expect(problemsWith('kueuer.reply.x')).toEqual([
        'invalid --queue (KUEUER_QUEUE) from --queue: the queue "kueuer.reply.x" falls in the reply namespace kueuer.reply.*, which only responders\' reply inboxes may use; name the queue otherwise',
      ]);
      expect(problemsWith('reply.x')).toEqual([
        'invalid --queue (KUEUER_QUEUE) from --queue: the queue "reply.x" would be Kafka\'s topic "kueuer.reply.x", which falls in the reply namespace kueuer.reply.*, where only responders\' reply inboxes and their results and cancellation topics may be; name the queue otherwise',
      ]);
    }
  });
});

describe('dry runs and requests that are not the apiserver leave no trace (issue 22, item 14)', () => {
  const patchOf = (r: { patch?: string }) => JSON.parse(Buffer.from(r.patch ?? '', 'base64').toString()) as unknown;

  it('a dry-run Service gets the same answer, with the port computed from a fresh read, and nothing is reserved', async () => {
    const real = recordingPorts([20000]);
    const dry = recordingPorts([20000]);
    const wet = await mutate(serviceRequest(service('shop')), testInjectionConfig, real, noJobs, silentLog);
    const dryRun = await mutate(serviceRequest(service('shop'), { dryRun: true }), testInjectionConfig, dry, noJobs, silentLog);
    expect(real.reserved).toHaveLength(1);
    expect(dry.reserved).toEqual([]);
    expect(dry.refreshed).toBe(1);
    expect(dryRun.response).toEqual(wet.response);
    expect(patchOf(dryRun.response)).toContainEqual({
      op: 'add',
      path: '/metadata/annotations/kueuer.io~1responder-port',
      value: String(real.reserved[0]![1]),
    });
  });

  it('reserves nothing for a review that is not shaped as the apiserver sends it (no user, or a uid that is no UUID)', async () => {
    for (const extra of [{ userInfo: undefined }, { uid: 'probe' }, { userInfo: { username: '' } }] as Array<Partial<AdmissionRequest>>) {
      const ports = recordingPorts();
      const { response } = await mutate(serviceRequest(service('shop'), extra), testInjectionConfig, ports, noJobs, silentLog);
      expect(response.allowed).toBe(true);
      expect(ports.reserved, JSON.stringify(extra)).toEqual([]);
      // Answered from the cache: such a review costs the apiserver no read either, dry run or not.
      await mutate(serviceRequest(service('shop'), { ...extra, dryRun: true }), testInjectionConfig, ports, noJobs, silentLog);
      expect(ports.refreshed, JSON.stringify(extra)).toBe(0);
    }
  });

  it('mayLeaveTraces: only a non-dry-run review with a UUID uid and a user', () => {
    const base = serviceRequest(service('shop'));
    expect(mayLeaveTraces(base)).toBe(true);
    expect(mayLeaveTraces({ ...base, dryRun: true })).toBe(false);
    expect(mayLeaveTraces({ ...base, uid: 'u-1' })).toBe(false);
    expect(mayLeaveTraces({ ...base, userInfo: {} })).toBe(false);
  });
});

describe("an Event's text from a refused pod (issue 22, item 14)", () => {
  it('is one line of at most 1024 characters, whatever the annotations held', async () => {
    const pod = appPod('shop', { 'kueuer.io/inject': 'true' }, { 'kueuer.io/concurrency': `lots\n\u001b[31mFAKE Warning\r\n${'x'.repeat(5000)}` });
    const { response } = await mutate(podRequest(pod), testInjectionConfig, { usedPorts: () => new Set() }, noJobs, silentLog);
    expect(response.allowed).toBe(false);
    const text = eventMessage(response.status!.message);
    expect(text).toHaveLength(EVENT_MESSAGE_MAX);
    expect(text.endsWith('…')).toBe(true);
    expect(text).toMatch(/^kueuer: kueuer\.io\/concurrency: /);
    // eslint-disable-next-line no-control-regex -- asserting that none is left
    expect(text).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/);
    expect(eventMessage('kueuer: short')).toBe('kueuer: short');
  });
});
