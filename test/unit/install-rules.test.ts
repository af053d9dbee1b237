/**
 * scripts/install.sh and scripts/uninstall.sh take the names and rules they share with the webhook
 * from scripts/lib/kueuer-rules.sh, which `npm run docs` renders from the TypeScript
 * (test/unit/docs-reference.test.ts fails when it is stale): its refusal is the webhook's for any
 * owner of the external metrics APIService, and the scripts spell none of those values themselves.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderInstallRules, RULES_FILE } from '../../scripts/dev/install-rules.js';
import { decideMetricsOwner } from '../../webhook/autoscaling/metrics-owner.js';

const root = join(import.meta.dirname, '..', '..');
const rules = join(root, RULES_FILE);

/** What the rules file's refusal prints for `owner` (`namespace/name`, or `/` for none). */
function scriptRefusal(owner: string): string {
  const r = spawnSync('bash', ['-c', `. "$1" && kueuer_metrics_owner_refusal "$2"`, 'bash', rules, owner], { encoding: 'utf8' });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  return r.stdout.trimEnd();
}

/** The lines of a script that are not comments. */
const code = (path: string) =>
  readFileSync(join(root, path), 'utf8')
    .split('\n')
    .filter((l) => !/^\s*#/.test(l))
    .join('\n');

describe('the rules the install scripts share with the webhook (scripts/lib/kueuer-rules.sh)', () => {
  it('is what the TypeScript renders', () => {
    expect(readFileSync(rules, 'utf8')).toBe(renderInstallRules());
  });

  it.each([
    ['keda/keda-operator-metrics-apiserver'],
    ['monitoring/prometheus-adapter'],
    ['datadog/datadog-cluster-agent-metrics-api'],
    ['keda-system/other'],
    ['/'],
  ])('refuses an APIService owned by %s with the webhook’s message', (owner) => {
    const [namespace, name] = owner.split('/');
    const apiService = owner === '/' ? { spec: {} } : { spec: { service: { namespace, name } } };
    const decision = decideMetricsOwner(apiService);
    expect(decision.kind).toBe('foreign');
    expect(scriptRefusal(owner)).toBe(decision.kind === 'foreign' ? decision.message : '');
  });

  it.each([['scripts/install.sh'], ['scripts/uninstall.sh']])('%s spells none of those names itself', (script) => {
    const text = code(script);
    expect(text).toContain('lib/kueuer-rules.sh"');
    for (const literal of [
      'v1beta1.external.metrics.k8s.io',
      'kueuer-webhook-tls',
      'kueuer-backlog-tls',
      'kueuer.io/inject',
      'kueuer.io/original-service',
      'kueuer\\.io/original-service',
      'managed-by=',
      '--autoscaling keda',
    ])
      expect(text, literal).not.toContain(literal);
  });
});
