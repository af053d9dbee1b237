/**
 * The scenario runner's pure parts (scripts/scenario/): the report's stages
 * compressed and turned into arrival rates, vegeta's results classified, and
 * the run's summary.
 */
import { describe, expect, it } from 'vitest';
import { APPS, expectedRequests, loadSeconds, planLoad, ratePerUser, vegetaRate } from '../../scripts/scenario/plan.js';
import { parseArgs } from '../../scripts/scenario/cli.js';
import { gnuplotScript, outcomeGroup, requestsTsv, samplesTsv } from '../../scripts/scenario/plot.js';
import { classify, parseVegeta, quantile, summarize, type Sample } from '../../scripts/scenario/results.js';

describe('the load plan', () => {
  it('keeps the report’s shape, compressed by the factor, with the spike at what max replicas serve', () => {
    const plan = planLoad(APPS['random-delay']!, { factor: 6, maxReplicas: 30, spikeLoad: 1 });
    expect(plan.map((s) => s.users)).toEqual([10, 100, 20, 10, 50]);
    expect(plan.map((s) => s.durationS)).toEqual([10, 30, 30, 70, 40 / 6]);
    expect(plan.map((s) => s.startS)).toEqual([0, 10, 40, 70, 140]);
    expect(loadSeconds(plan)).toBeCloseTo(880 / 6);
    // 30 pods, one request at a time, 15 s mean: 2 requests/s at 100 users.
    expect(plan[1]!.rate).toBeCloseTo(2);
    expect(plan[0]!.rate).toBeCloseTo(0.2);
    expect(ratePerUser(APPS.worker!, { maxReplicas: 30, spikeLoad: 0.5 })).toBeCloseTo(0.03);
  });

  it('refuses a factor below 1 and a spike load that is not positive', () => {
    expect(() => planLoad(APPS.worker!, { factor: 0.5, maxReplicas: 30, spikeLoad: 1 })).toThrow(/at least 1/);
    expect(() => planLoad(APPS.worker!, { factor: 6, maxReplicas: 30, spikeLoad: 0 })).toThrow(/positive/);
  });

  it('gives vegeta an integer rate per 100 s, and counts what it will send', () => {
    expect(vegetaRate(0.2)).toBe('20/100s');
    expect(vegetaRate(6)).toBe('600/100s');
    expect(vegetaRate(0.001)).toBe('1/100s');
    expect(expectedRequests({ rate: 2, durationS: 30 })).toBe(60);
    expect(expectedRequests({ rate: 0.2, durationS: 12 })).toBe(3);
  });
});

describe('vegeta’s results', () => {
  it('classifies each request by outcome', () => {
    expect(classify(200, '')).toBe('answered');
    expect(classify(504, '504 Gateway Timeout')).toBe('http-504');
    expect(classify(0, 'Get "http://10.96.77.9:80/": context deadline exceeded (Client.Timeout exceeded while awaiting headers)')).toBe('client-timeout');
    expect(classify(0, 'Get "http://10.96.77.9:80/": dial tcp 10.96.77.9:80: connect: connection refused')).toBe('refused');
    expect(classify(0, 'Get "http://10.96.77.9:80/": read tcp 1->2: read: connection reset by peer')).toBe('reset');
    expect(classify(0, 'Get "http://10.96.77.9:80/": EOF')).toBe('reset');
    expect(classify(0, 'something else')).toBe('other-error');
  });

  it('parses vegeta’s JSON lines relative to the load’s start, in start order', () => {
    const start = Date.parse('2026-12-07T02:00:00Z');
    const lines = [
      '{"attack":"spike","seq":1,"code":0,"timestamp":"2026-12-07T02:00:12.5Z","latency":60000000000,"bytes_out":0,"bytes_in":0,"error":"Get \\"http://x/\\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)","body":null}',
      '{"attack":"warm-up","seq":0,"code":200,"timestamp":"2026-12-07T02:00:01Z","latency":1500000000,"bytes_out":0,"bytes_in":10,"error":"","body":"e30="}',
      '',
    ].join('\n');
    expect(parseVegeta(lines, start)).toEqual([
      { stage: 'warm-up', startS: 1, latencyS: 1.5, code: 200, error: '', outcome: 'answered' },
      { stage: 'spike', startS: 12.5, latencyS: 60, code: 0, error: expect.stringContaining('Client.Timeout'), outcome: 'client-timeout' },
    ]);
  });
});

describe('the summary', () => {
  const sample = (t: number, ready: number, backlog: number | null = null): Sample => ({
    t,
    ready,
    replicas: ready,
    desired: ready,
    backlog,
    cpuMillis: null,
    hostCpuPercent: null,
  });

  it('counts sent, answered, failed by cause, lost %, latency quantiles, spike → new replica Ready and most replicas', () => {
    const r = (startS: number, latencyS: number, outcome: 'answered' | 'client-timeout' | 'http-504') => ({
      stage: 's',
      startS,
      latencyS,
      code: outcome === 'answered' ? 200 : outcome === 'http-504' ? 504 : 0,
      error: '',
      outcome,
    });
    const requests = [r(0, 1, 'answered'), r(1, 2, 'answered'), r(2, 3, 'answered'), r(3, 60, 'client-timeout'), r(4, 60, 'http-504')];
    const samples = [sample(0, 1, 0), sample(9, 1, 4), sample(10, 1, 8), sample(11, 1, 9), sample(17, 3, 7), sample(18, 5, 2)];
    expect(summarize(requests, samples, 10)).toEqual({
      sent: 5,
      answered: 3,
      failed: 2,
      failedByCause: { 'client-timeout': 1, 'http-504': 1 },
      lostPercent: 40,
      p50S: 2,
      p95S: 3,
      maxS: 3,
      spikeToNewReadyS: 7,
      maxReady: 5,
      maxBacklog: 9,
    });
  });

  it('has no spike-to-Ready time when no replica was added, and no backlog without Kueuer', () => {
    const s = summarize([], [sample(0, 1), sample(5, 1)], 2);
    expect(s.spikeToNewReadyS).toBeNull();
    expect(s.maxBacklog).toBeNull();
    expect(s.lostPercent).toBe(0);
    expect(quantile([], 0.5)).toBeNull();
  });
});

describe('npm run scenario’s command line', () => {
  it('takes the scenario name and options, with defaults for the full runs', () => {
    expect(parseArgs(['worker'])).toEqual({
      name: 'worker',
      variants: ['a', 'b', 'c'],
      factor: 6,
      maxReplicas: 30,
      spikeLoad: 1,
      out: 'docs/scenarios',
      redraw: false,
    });
    expect(parseArgs(['random-delay', '--variants', 'b,c', '--factor', '8', '--max-replicas', '10', '--spike-load', '0.5', '--out', '/tmp/x'])).toEqual({
      name: 'random-delay',
      variants: ['b', 'c'],
      factor: 8,
      maxReplicas: 10,
      spikeLoad: 0.5,
      out: '/tmp/x',
      redraw: false,
    });
    expect(parseArgs(['worker', '--redraw']).redraw).toBe(true);
  });

  it('refuses an unknown scenario, variant, flag or a malformed number, with the usage', () => {
    expect(() => parseArgs([])).toThrow(/unknown scenario ""[^]*usage: npm run scenario/);
    expect(() => parseArgs(['k6'])).toThrow(/unknown scenario "k6": one of random-delay, worker/);
    expect(() => parseArgs(['worker', '--variants', 'a,d'])).toThrow(/--variants: expected a comma list of a, b, c, got "a,d"/);
    expect(() => parseArgs(['worker', '--factor', '0.5'])).toThrow(/--factor: expected a number ≥ 1, got "0.5"/);
    expect(() => parseArgs(['worker', '--factor'])).toThrow(/--factor: expected a number ≥ 1, got undefined/);
    expect(() => parseArgs(['worker', '--users', '3'])).toThrow(/unknown argument "--users"/);
  });
});

describe('the picture’s data and gnuplot script', () => {
  const plan = planLoad(APPS.worker!, { factor: 6, maxReplicas: 30, spikeLoad: 1 });
  const req = (outcome: 'answered' | 'client-timeout' | 'http-504' | 'refused') =>
    ({ stage: 's', startS: 1.5, latencyS: 2, code: 0, error: '', outcome }) as const;

  it('groups outcomes into the four colours and writes one row per request and per second', () => {
    expect(['answered', 'client-timeout', 'http-504', 'refused'].map((o) => outcomeGroup({ outcome: o as 'answered' }))).toEqual([0, 1, 2, 3]);
    expect(requestsTsv([req('http-504')]).split('\n')).toEqual(['# start_s\tlatency_s\tgroup\toutcome', '1.500\t2.000\t2\thttp-504']);
    expect(samplesTsv([{ t: 3, ready: 2, replicas: 4, desired: 4, backlog: null, cpuMillis: 40, hostCpuPercent: 97 }]).split('\n')[1]).toBe(
      '3\t2\t4\t4\tNaN\t40\t97',
    );
  });

  it('draws (a) beside (b) and (c): latency on top, replicas and backlog (CPU without Kueuer) below, stage lines in each', () => {
    const run = (id: string, kueuer: boolean) => ({ id, title: id, requests: [req('answered')], samples: [], kueuer });
    const gp = gnuplotScript([run('a', false), run('b', true), run('c', true)], plan, 'worker.png', 'worker');
    expect(gp).toContain('set multiplot layout 2,3');
    expect(gp).toContain("set output 'worker.png'");
    expect(gp.match(/^plot '(a|b|c)-requests\.tsv'/gm)).toEqual(["plot 'a-requests.tsv'", "plot 'b-requests.tsv'", "plot 'c-requests.tsv'"]);
    expect(gp).toContain("plot 'a-samples.tsv' using 1:6 axes x1y2");
    expect(gp).toContain("plot 'b-samples.tsv' using 1:5 axes x1y2");
    expect(gp.match(/^set arrow from 10\.0,/gm)).toHaveLength(6);
  });
});
