/**
 * `npm run lint` (part of `npm test`) holds the product code to the house's size rules: files of
 * at most 350 lines and functions of at most 150, blank lines and comments not counted; tests are free.
 */
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

const eslint = new ESLint({ cwd: new URL('../..', import.meta.url).pathname });

describe('size rules in eslint.config.js', () => {
  it('apply to every product folder, not to the tests', async () => {
    for (const file of ['webhook/start.ts', 'cli/check.ts', 'shared/kube/cluster.ts', 'sidecar/worker.ts', 'responder/start.ts']) {
      const rules = (await eslint.calculateConfigForFile(file)).rules as Record<string, unknown[]>;
      expect(rules['max-lines'], file).toEqual([2, { max: 350, skipBlankLines: true, skipComments: true }]);
      expect(rules['max-lines-per-function'], file).toEqual([2, { max: 150, skipBlankLines: true, skipComments: true, IIFEs: true }]);
    }
    const test = (await eslint.calculateConfigForFile('test/unit/options.test.ts')).rules as Record<string, unknown>;
    expect(test['max-lines']).toBeUndefined();
    expect(test['max-lines-per-function']).toBeUndefined();
  }, 60_000);

  it('report a function over the limit', async () => {
    const body = Array.from({ length: 151 }, (_, i) => `  const v${i} = ${i};`).join('\n');
    const [result] = await eslint.lintText(`export function long(): void {\n${body}\n}\n`, { filePath: 'shared/defined.ts' });
    expect(result!.messages.map((m) => m.ruleId)).toContain('max-lines-per-function');
  }, 120_000);
});
