/**
 * The scenario runner's reading of the pods' logs (scripts/scenario/logs.ts):
 * the app's access log, the sidecar's consumer-group lines, the pods' lives,
 * and the matching of a client's request with the app's calls.
 */
import { describe, expect, it } from 'vitest';
import { callsTsv, eventsTsv, parseAppCalls, parseSidecarEvents, podEvents, requestFates, summarizeLogs, type AppCall } from '../../scripts/scenario/logs.js';
import type { RequestRecord } from '../../scripts/scenario/results.js';

const T0 = Date.parse('2026-12-07T05:00:00.000Z');
const iso = (s: number) => new Date(T0 + s * 1000).toISOString();
const access = (startS: number, workedMs: number, headers: Record<string, string>) =>
  JSON.stringify({ start: iso(startS), workedMs, method: 'GET', url: '/', headers: { host: '10.96.77.9', ...headers } });
const kueuerHeaders = (id: string, arrivedS: number, redelivered = false) => ({
  'x-kueuer-request-id': id,
  'x-kueuer-deadline': iso(arrivedS + 60),
  ...(redelivered ? { 'x-kueuer-redelivered': 'true' } : {}),
});
const req = (startS: number, outcome: RequestRecord['outcome'], latencyS = 60): RequestRecord => ({
  stage: 'spike',
  startS,
  latencyS,
  code: outcome === 'answered' ? 200 : 0,
  error: '',
  outcome,
});

describe('the app’s access log', () => {
  it('gives each call its pod, start, work, Kueuer request id, arrival (deadline − timeout) and rerun mark', () => {
    const text = [
      'random-delay listening on 8080',
      access(12.5, 3000, kueuerHeaders('r1', 11.9)),
      access(20, 1500, kueuerHeaders('r1', 11.9, true)),
      access(30, 100, {}),
      '{not json',
    ].join('\n');
    expect(parseAppCalls('p-1', text, T0, 60)).toEqual([
      { pod: 'p-1', startS: 12.5, workedS: 3, reqId: 'r1', redelivered: false, arrivedS: 11.9 },
      { pod: 'p-1', startS: 20, workedS: 1.5, reqId: 'r1', redelivered: true, arrivedS: 11.9 },
      { pod: 'p-1', startS: 30, workedS: 0.1, reqId: '', redelivered: false, arrivedS: null },
    ]);
  });
});

describe('the sidecar’s consumer-group lines and the pods’ lives', () => {
  it('reads joins with their partitions, revocations and readiness from pino lines', () => {
    const text = [
      JSON.stringify({ level: 30, time: T0 + 14_000, msg: 'sidecar ready' }),
      JSON.stringify({ level: 30, time: T0 + 15_000, memberId: 'm', partitions: [0, 1], msg: 'joined the consumer group' }),
      JSON.stringify({ level: 30, time: T0 + 30_500, partition: 1, msg: 'partition revoked; its unfinished requests go to the new owner' }),
      JSON.stringify({ level: 30, time: T0 + 31_000, msg: 'something else' }),
    ].join('\n');
    expect(parseSidecarEvents('p-2', text, T0)).toEqual([
      { t: 14, pod: 'p-2', event: 'sidecar-ready', detail: '' },
      { t: 15, pod: 'p-2', event: 'joined', detail: 'partitions [0,1]' },
      { t: 30.5, pod: 'p-2', event: 'revoked', detail: 'partition 1' },
    ]);
  });

  it('takes creation, Ready, restarts and failed probes from the pods and events, in time order', () => {
    const pods = [
      {
        metadata: { name: 'p-3', creationTimestamp: iso(20) },
        spec: { containers: [{ name: 'app' }], initContainers: [{ name: 'kueuer-sidecar' }] },
        status: {
          conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: iso(41) }],
          containerStatuses: [{ name: 'app', restartCount: 0 }],
          initContainerStatuses: [{ name: 'kueuer-sidecar', restartCount: 2 }],
        },
      },
    ];
    const events = [
      { reason: 'Unhealthy', message: 'Liveness probe failed: connect: connection refused\nmore', lastTimestamp: iso(33), involvedObject: { name: 'p-3' } },
      { reason: 'Scheduled', message: 'assigned', lastTimestamp: iso(20), involvedObject: { name: 'p-3' } },
    ];
    expect(podEvents({ pods, events }, T0)).toEqual([
      { t: 20, pod: 'p-3', event: 'created', detail: '' },
      { t: 33, pod: 'p-3', event: 'probe-failed', detail: 'Unhealthy: Liveness probe failed: connect: connection refused' },
      { t: 41, pod: 'p-3', event: 'ready', detail: '' },
      { t: 41, pod: 'p-3', event: 'restarted', detail: 'kueuer-sidecar ×2' },
    ]);
  });
});

describe('a client request’s fate inside Kueuer', () => {
  const call = (pod: string, startS: number, reqId: string, arrivedS: number, redelivered = false): AppCall => ({
    pod,
    startS,
    workedS: 10,
    reqId,
    redelivered,
    arrivedS,
  });
  const calls = [call('p-1', 11, 'a', 10.1), call('p-2', 40, 'b', 11.6), call('p-1', 55, 'b', 11.6, true), call('p-2', 70, 'x', 30)];

  it('matches each client request with the Kueuer request that arrived closest to it, each used once', () => {
    const fates = requestFates([req(11.5, 'client-timeout'), req(10, 'answered', 12), req(20, 'http-504')], calls);
    expect(fates.map((f) => [f.startS, f.reqId, f.calls.map((c) => c.startS)])).toEqual([
      [10, 'a', [11]],
      [11.5, 'b', [40, 55]],
      [20, null, []],
    ]);
  });

  it('counts calls, reruns, joins, and what the lost requests saw', () => {
    const fates = requestFates([req(10, 'answered', 12), req(11.5, 'client-timeout'), req(20, 'http-504')], calls);
    const events = [
      { t: 15, pod: 'p-2', event: 'joined' as const, detail: '' },
      { t: 15, pod: 'p-1', event: 'joined' as const, detail: '' },
      { t: 15, pod: 'p-1', event: 'revoked' as const, detail: '' },
    ];
    const responder = JSON.stringify({ msg: 'dropped a late reply: its client was already answered or gone' });
    expect(summarizeLogs(fates, calls, events, responder)).toEqual({
      appCalls: 4,
      ranTwice: 1,
      redelivered: 1,
      groupJoins: 2,
      revocations: 1,
      restarts: 0,
      probeFailures: 0,
      lateReplies: 1,
      lostNeverCalled: 1,
      lostCalledTwice: 1,
      lostWaitS: [28.5],
    });
  });

  it('writes the calls with their client request, and the pods’ events, as TSV', () => {
    const fates = requestFates([req(10, 'answered', 12)], calls.slice(0, 1));
    expect(callsTsv(fates, calls.slice(0, 1)).split('\n')).toEqual([
      '# call_start_s\tworked_s\tpod\tredelivered\tarrived_s\tclient_start_s\tclient_outcome\treq_id',
      '11.0\t10.0\tp-1\tno\t10.1\t10.0\tanswered\ta',
      '',
    ]);
    expect(eventsTsv([{ t: 3, pod: 'p', event: 'joined', detail: 'partitions [0]' }])).toBe('# t_s\tpod\tevent\tdetail\n3.0\tp\tjoined\tpartitions [0]\n');
  });
});

describe('the page’s table of what the pods said', () => {
  it('has one row per run that kept its logs, and none for runs recorded before', async () => {
    const { logsTable } = await import('../../scripts/scenario/report.js');
    const logs = {
      appCalls: 40,
      ranTwice: 3,
      redelivered: 3,
      groupJoins: 12,
      revocations: 5,
      restarts: 0,
      probeFailures: 1,
      lateReplies: 2,
      lostNeverCalled: 1,
      lostCalledTwice: 2,
      lostWaitS: [31.2, 48],
    };
    const run = { variant: 'c' as const, startedAt: '', requests: [], samples: [], notes: [], loadAvg: [1, 1] as [number, number] };
    const summary = {
      sent: 0,
      answered: 0,
      failed: 0,
      failedByCause: {},
      lostPercent: 0,
      p50S: null,
      p95S: null,
      maxS: null,
      spikeToNewReadyS: null,
      maxReady: 0,
      maxBacklog: null,
    };
    expect(logsTable([{ ...run, variant: 'a', summary }])).toBe('');
    expect(
      logsTable([
        { ...run, variant: 'a', summary },
        { ...run, summary, logs },
      ]).split('\n')[2],
    ).toBe('| (c) Kueuer on Kafka | 40 | 3 | 3 | 12 | 5 | 0 | 1 | 2 | 1 | 2 | 31, 48 s |');
  });
});

describe('the node at the end of a run', () => {
  it('says what the node can give, what all pods request, and how many app pods are Ready or Pending', async () => {
    const { nodeCapacity, quantity } = await import('../../scripts/scenario/logs.js');
    expect([quantity('250m'), quantity('64Mi'), quantity('2'), quantity('1Gi'), quantity(undefined)]).toEqual([0.25, 64 * 2 ** 20, 2, 2 ** 30, 0]);
    const pod = (namespace: string, cpu: string, phase: string, ready: boolean) => ({
      metadata: { namespace },
      spec: { containers: [{ resources: { requests: { cpu, memory: '512Mi' } } }], initContainers: [{ resources: { requests: { cpu: '30m' } } }] },
      status: { phase, conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }] },
    });
    const pods = [
      pod('shop', '20m', 'Running', true),
      pod('shop', '20m', 'Pending', false),
      pod('kube-system', '100m', 'Running', true),
      pod('shop', '20m', 'Succeeded', false),
    ];
    expect(nodeCapacity({ status: { allocatable: { cpu: '2', memory: '4Gi' } } }, pods, 'shop')).toBe(
      'node at the end: allocatable 2 CPU, 4.0 GiB; pods request 230m CPU (12 %), 1.5 GiB; app pods 2: 1 Ready, 1 Pending',
    );
  });
});
