/** The bench's replication lines (scripts/bench/bench-report.ts): each pair compared from the same run's rows. */
import { describe, expect, it } from 'vitest';
import { REPLICATED_PATHS, replicationLines, type Row } from '../../scripts/bench/bench-report.js';

const row = (path: string, app: string, concurrency: number, rps: number, p50: number, proxy: number, broker: number): Row => ({
  app,
  path,
  generator: 'wrk',
  concurrency,
  requests: rps * 5,
  errors: 0,
  rps,
  p50,
  p99: p50 * 3,
  cpuUs: { proxy, broker, app: 50 },
});

describe('bench replication lines', () => {
  it('compares quorum with classic and RF 3 with RF 1 row by row: req/s, p50, Kueuer and broker CPU per request', () => {
    const lines = replicationLines(
      [
        row(REPLICATED_PATHS.quorum, '0 ms app', 64, 2000, 20, 300, 400),
        row(REPLICATED_PATHS.classic, '0 ms app', 64, 2500, 16, 290, 200),
        row(REPLICATED_PATHS.rf3, '10 ms app', 64, 1500, 30, 400, 600),
        row(REPLICATED_PATHS.rf1, '10 ms app', 64, 1800, 25, 380, 300),
      ],
      '0 ms app',
      '10 ms app',
    );
    expect(lines).toEqual([
      'What replication costs, judged on the wrk rows of this run:',
      '',
      '- quorum vs classic queue, 0 ms app, c=64: 2000 against 2500 req/s (0.80×), p50 20.00 against 16.00 ms; CPU per request: Kueuer 300 against 290 µs, the brokers 400 against 200 µs (2.00×).',
      '- RF 3 vs RF 1 topics, 10 ms app, c=64: 1500 against 1800 req/s (0.83×), p50 30.00 against 25.00 ms; CPU per request: Kueuer 400 against 380 µs, the brokers 600 against 300 µs (2.00×).',
    ]);
  });

  it('says nothing when no pair was measured', () => {
    expect(replicationLines([row(REPLICATED_PATHS.quorum, '0 ms app', 64, 1, 1, 1, 1)], '0 ms app', '10 ms app')).toEqual([]);
  });
});
