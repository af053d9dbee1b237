/**
 * Runs a load plan (scripts/scenario/plan.ts) with vegeta, open loop: one
 * `vegeta attack` per stage, each started at its stage's offset and running
 * beside the others (an attack waits for its own requests' answers before it
 * exits; the next stage must not wait for them). Every request is a fresh
 * connection (-keepalive=false, as distinct users' browsers), gives up after
 * the client timeout, and is recorded: `vegeta encode --to json` of all
 * attacks, parsed by results.ts.
 */
import { execFile, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PlannedStage } from './plan.js';
import { vegetaRate } from './plan.js';
import { parseVegeta, type RequestRecord } from './results.js';

export interface VegetaRun {
  /** Epoch ms at which the first stage started. */
  startMs: number;
  /** Resolves when every attack has exited (every request answered or timed out). */
  done: Promise<RequestRecord[]>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** vegeta attack's arguments for one stage. */
export function attackArgs(stage: PlannedStage, targets: string, output: string, clientTimeoutS: number): string[] {
  return [
    'attack',
    `-name=${stage.name}`,
    `-targets=${targets}`,
    `-rate=${vegetaRate(stage.rate)}`,
    `-duration=${Math.round(stage.durationS * 1000)}ms`,
    `-timeout=${clientTimeoutS}s`,
    '-keepalive=false',
    '-max-body=256',
    `-output=${output}`,
  ];
}

function attack(vegeta: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(vegeta, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`vegeta ${args.join(' ')} exited ${code}: ${stderr}`))));
  });
}

/** Starts the plan against `url` (GET), writing each stage's binary results into `dir`. */
export function runPlan(vegeta: string, plan: readonly PlannedStage[], url: string, dir: string, clientTimeoutS = 60): VegetaRun {
  const targets = join(dir, 'targets.txt');
  writeFileSync(targets, `GET ${url}\n`);
  const startMs = Date.now();
  const outputs = plan.map((s, i) => join(dir, `results-${i}-${s.name}.bin`));
  const attacks = plan.map(async (stage, i) => {
    await sleep(Math.max(0, startMs + stage.startS * 1000 - Date.now()));
    await attack(vegeta, attackArgs(stage, targets, outputs[i]!, clientTimeoutS));
  });
  const done = Promise.all(attacks).then(
    () =>
      new Promise<RequestRecord[]>((resolve, reject) => {
        execFile(vegeta, ['encode', '--to=json', ...outputs], { maxBuffer: 256 << 20 }, (err, stdout) => {
          if (err) reject(new Error(`vegeta encode: ${err.message}`));
          else resolve(parseVegeta(stdout, startMs));
        });
      }),
  );
  return { startMs, done };
}
