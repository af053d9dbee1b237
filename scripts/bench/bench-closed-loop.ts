/** The closed loop of the benchmark's load generators: `concurrency` workers, each starting its next job when the last ends. */

/** Runs `job` on `concurrency` workers for `seconds`; a job that throws or returns false is an error. Returns errors and elapsed seconds. */
export async function closedLoop(concurrency: number, seconds: number, job: () => Promise<boolean>): Promise<{ errors: number; seconds: number }> {
  let errors = 0;
  const started = performance.now();
  const until = started + seconds * 1000;
  const worker = async (): Promise<void> => {
    while (performance.now() < until) {
      try {
        if (!(await job())) errors++;
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { errors, seconds: (performance.now() - started) / 1000 };
}

/** The p-quantile (0–1) of a list of latencies; NaN when empty. */
export function percentile(list: readonly number[], p: number): number {
  const sorted = [...list].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN;
}
