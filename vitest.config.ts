import { configDefaults, defineConfig } from 'vitest/config';

/**
 * `npm run test:fast` (KUEUER_TEST_SCOPE=fast) leaves out what needs the
 * control plane, the real node or the locally built images: the global setup
 * does not build them in that scope.
 */
const NEEDS_CONTROL_PLANE_OR_IMAGES = [
  'test/node/**',
  'test/integration/images.test.ts',
  'test/integration/autoscaling.test.ts',
  'test/integration/chart-values.test.ts',
  'test/integration/check.test.ts',
  'test/integration/cluster.test.ts',
  'test/integration/install-artifacts.test.ts',
  'test/integration/forbidden-reads.test.ts',
  'test/integration/keda-ca-secret.test.ts',
  'test/integration/leader-election.test.ts',
  'test/integration/metrics-owner.test.ts',
  'test/integration/quick-start.test.ts',
  'test/integration/refusal-events.test.ts',
  'test/integration/self-issued-certs.test.ts',
  'test/integration/status.test.ts',
  'test/integration/uninstall.test.ts',
];

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: [...configDefaults.exclude, ...(process.env.KUEUER_TEST_SCOPE === 'fast' ? NEEDS_CONTROL_PLANE_OR_IMAGES : [])],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Integration tests start servers and broker queues; files run in parallel, tests in a file in order.
    pool: 'forks',
  },
});
