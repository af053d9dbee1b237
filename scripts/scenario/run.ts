/**
 * `npm run scenario -- <name> [--variants a,b,c] [--factor 6] [--max-replicas 30] [--spike-load 1] [--out docs/scenarios]`
 *
 * The origin experiment on real pods (docs/scenarios/README.md): for the app
 * <name> (random-delay or worker, test/scenario-apps/) and the report's load,
 * runs (a) without Kueuer, (b) Kueuer on RabbitMQ, (c) Kueuer on Kafka, each on
 * a fresh real node (test/helpers/node.ts; needs root, like test/node), and
 * writes the numbers and the picture to <out>/<name>.md and <name>.png, the
 * raw records to <out>/data/<name>/. A run of some variants keeps the others'
 * earlier records, so the page always shows (a) beside (b) and (c).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, release, totalmem } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { buildImagesAsync } from '../../test/helpers/images.js';
import { parseArgs, scriptOutput } from './cli.js';
import { APPS, planLoad, ratePerUser } from './plan.js';
import { callsTsv, eventsTsv, requestFates } from './logs.js';
import { drawScenario } from './plot.js';
import { scenarioPage } from './report.js';
import { runVariant, type VariantRun } from './scenario.js';
import { VARIANT_TITLES } from './variants.js';

const root = join(import.meta.dirname, '..', '..');

async function main(argv: readonly string[]): Promise<void> {
  const options = parseArgs(argv);
  if (process.getuid?.() !== 0) throw new Error('the scenario runs a real node: it needs root (containerd, the kubelet, iptables)');
  const app = APPS[options.name]!;
  const tools = {
    binDir: scriptOutput('scripts/dev/k8s-binaries.sh'),
    nodeDir: scriptOutput('scripts/dev/node.sh'),
    helmBin: scriptOutput('scripts/dev/helm.sh'),
    vegeta: scriptOutput('scripts/dev/vegeta.sh'),
    metricsServer: scriptOutput('scripts/scenario/metrics-server.sh'),
    amqpUrl: process.env.KUEUER_TEST_AMQP_URL ?? '',
  };
  const gnuplot = scriptOutput('scripts/scenario/gnuplot.sh');
  let stopRabbit = false;
  if (options.redraw) options.variants = [];
  if (options.variants.includes('b') && !tools.amqpUrl) {
    tools.amqpUrl = scriptOutput('scripts/dev/rabbitmq.sh', ['start']);
    stopRabbit = true;
  }
  const images = options.variants.length ? await buildImagesAsync() : null;
  const plan = planLoad(app, options);
  const out = resolve(root, options.out);
  const dataDir = join(out, 'data', app.name);
  mkdirSync(dataDir, { recursive: true });
  try {
    for (const variant of options.variants) {
      const run = await runVariant(
        {
          tools,
          images: images!,
          app,
          plan,
          maxReplicas: options.maxReplicas,
          clientTimeoutS: 60,
          workDir: join(root, '.cache', 'scenario', app.name, variant),
        },
        variant,
      );
      writeFileSync(join(dataDir, `${variant}.json`), JSON.stringify({ ...run, command: `npm run scenario -- ${argv.join(' ')}` }));
      if (run.calls) writeFileSync(join(dataDir, `${variant}-calls.tsv`), callsTsv(requestFates(run.requests, run.calls), run.calls));
      if (run.podEvents) writeFileSync(join(dataDir, `${variant}-pods.tsv`), eventsTsv(run.podEvents));
    }
  } finally {
    if (stopRabbit) execFileSync('bash', [join(root, 'scripts', 'dev', 'rabbitmq.sh'), 'stop'], { stdio: 'inherit' });
  }
  const runs = (['a', 'b', 'c'] as const)
    .filter((v) => existsSync(join(dataDir, `${v}.json`)))
    .map((v) => JSON.parse(readFileSync(join(dataDir, `${v}.json`), 'utf8')) as VariantRun);
  const png = join(out, `${app.name}.png`);
  drawScenario(
    gnuplot,
    runs.map((r) => ({ id: r.variant, title: VARIANT_TITLES[r.variant], requests: r.requests, samples: r.samples, kueuer: r.variant !== 'a' })),
    plan,
    dataDir,
    png,
    `${app.name}: ${app.describe} (stages ÷ ${options.factor}, max ${options.maxReplicas} replicas)`,
  );
  const cpuList = cpus();
  const page = scenarioPage({
    app,
    plan,
    factor: options.factor,
    maxReplicas: options.maxReplicas,
    clientTimeoutS: 60,
    ratePerUser: ratePerUser(app, options),
    runs,
    machine: { cpus: cpuList.length, cpuModel: cpuList[0]?.model ?? 'unknown', memoryGiB: Math.round(totalmem() / 2 ** 30), kernel: release() },
    command: [...new Set(runs.map((r) => r.command ?? `npm run scenario -- ${app.name}`))].join('`, `'),
    picture: relative(out, png),
  });
  writeFileSync(join(out, `${app.name}.md`), page);
  console.log(`wrote ${relative(root, join(out, `${app.name}.md`))} and ${relative(root, png)}`);
}

main(process.argv.slice(2).filter((a) => a !== '--')).catch((err: Error) => {
  console.error(err.message);
  process.exit(1);
});
