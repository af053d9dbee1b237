/**
 * The short version of the origin experiment's run (b) (docs/scenarios/README.md):
 * the worker app (5 s of work per request, test/scenario-apps/worker.mjs,
 * written knowing nothing of Kueuer) opted in to Kueuer on RabbitMQ, installed
 * as README says, on the real node; the report's stages compressed 8× (about
 * 2 minutes of load) from vegeta, open loop, 60 s client timeout. Kueuer's
 * generated HPA must add replicas on the backlog, and no request may be lost.
 * The full runs ((a), (b), (c), both apps, 30 replicas) are `npm run scenario`;
 * they are documented, not run here.
 */
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { buildImagesAsync } from '../helpers/images.js';
import { APPS, planLoad } from '../../scripts/scenario/plan.js';
import { runVariant } from '../../scripts/scenario/scenario.js';

const root = join(import.meta.dirname, '..', '..');

describe('the origin experiment, short: the worker behind Kueuer on RabbitMQ, on real pods', () => {
  it(
    'loses no request of the compressed spike and scales up on the backlog through the generated HPA',
    async () => {
      const app = APPS.worker!;
      // 5 replicas at most; the spike is 60 % of what 5 serve (0.6 requests/s), the other stages in proportion.
      const options = { factor: 8, maxReplicas: 5, spikeLoad: 0.6 };
      const plan = planLoad(app, options);
      const images = await buildImagesAsync();
      const run = await runVariant(
        {
          tools: {
            binDir: inject('k8sBinDir'),
            nodeDir: inject('nodeDir'),
            helmBin: inject('helmBin'),
            amqpUrl: inject('amqpUrl'),
            vegeta: inject('vegetaBin'),
            metricsServer: inject('metricsServerBin'),
          },
          images,
          app,
          plan,
          maxReplicas: options.maxReplicas,
          clientTimeoutS: 60,
          workDir: join(root, '.cache', 'scenario', 'short'),
        },
        'b',
      );
      const s = run.summary;
      expect(s.sent).toBeGreaterThan(15);
      expect({ failed: s.failed, causes: s.failedByCause }).toEqual({ failed: 0, causes: {} });
      expect(s.answered).toBe(s.sent);
      // The backlog grew, the HPA asked for more, and new pods became ready: a scale-up from Kueuer's metric.
      expect(s.maxBacklog).toBeGreaterThan(1);
      expect(Math.max(...run.samples.map((x) => x.desired ?? 0))).toBeGreaterThan(1);
      expect(s.maxReady).toBeGreaterThan(1);
      expect(s.spikeToNewReadyS).not.toBeNull();
      const firstBacklog = run.samples.find((x) => (x.backlog ?? 0) > 1)!;
      const firstScaleUp = run.samples.find((x) => x.ready > 1)!;
      expect(firstBacklog.t).toBeLessThanOrEqual(firstScaleUp.t);
      console.log(`scenario short (b): ${JSON.stringify(s)}`);
    },
    25 * 60_000,
  );
});
