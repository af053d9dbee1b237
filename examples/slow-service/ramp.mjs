#!/usr/bin/env node
// Ramps 5 → 20 → 5 concurrent clients against URL (one minute per stage by
// default) and prints, per stage, answers by status; exits 1 if any request
// failed. Each client sends one request at a time and waits as long as it takes.
//
//   node examples/slow-service/ramp.mjs http://127.0.0.1:8080 [SECONDS_PER_STAGE]
import http from 'node:http';

const url = new URL(process.argv[2] ?? 'http://127.0.0.1:8080');
const stageSeconds = Number(process.argv[3] ?? 60);
const stages = [5, 20, 5];
const agent = new http.Agent({ keepAlive: true, maxSockets: 100 });

function once(path) {
  return new Promise((resolve) => {
    const started = Date.now();
    const req = http.get({ host: url.hostname, port: url.port, path, agent, timeout: 120_000 }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode, ms: Date.now() - started }));
    });
    req.on('timeout', () => req.destroy(new Error('client timeout')));
    req.on('error', (err) => resolve({ status: `error: ${err.message}`, ms: Date.now() - started }));
  });
}

let failed = 0;
let n = 0;
for (const [i, clients] of stages.entries()) {
  const until = Date.now() + stageSeconds * 1000;
  const counts = new Map();
  let slowest = 0;
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (Date.now() < until) {
        const r = await once(`/job/${n++}`);
        counts.set(r.status, (counts.get(r.status) ?? 0) + 1);
        slowest = Math.max(slowest, r.ms);
        if (r.status !== 200) failed++;
      }
    }),
  );
  console.log(`stage ${i + 1}: ${clients} clients, ${stageSeconds} s: ${JSON.stringify(Object.fromEntries(counts))}, slowest ${(slowest / 1000).toFixed(1)} s`);
}
agent.destroy();
console.log(failed === 0 ? 'all requests answered 200' : `${failed} requests failed`);
process.exit(failed === 0 ? 0 : 1);
