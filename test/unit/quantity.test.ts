/**
 * One quantity grammar (issue 22, item 13): what validation accepts, the heap
 * sizing reads. `kueuer.io/sidecar-memory-limit: "+256Mi"` passed validation
 * and then threw inside decidePod, refusing the pod with a 500.
 */
import type { V1Pod } from '@kubernetes/client-node';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parsePodSettings } from '../../shared/annotations.js';
import { parseQuantity, quantityValue } from '../../shared/quantity.js';
import type { AdmissionRequest } from '../../webhook/admission/admission-review.js';
import { mutate } from '../../webhook/admission/mutate.js';
import { decidePod, heapFlags } from '../../webhook/admission/pod-injection.js';
import { JobWorkloads } from '../../webhook/admission/workload-queue.js';
import { silentLog } from '../helpers/stack.js';
import { testInjectionConfig } from '../helpers/webhook.js';

const LIMIT = 'kueuer.io/sidecar-memory-limit';

function pod(annotations: Record<string, string>): V1Pod {
  return {
    metadata: { name: 'p', namespace: 'shop', labels: { 'kueuer.io/inject': 'true' }, annotations },
    spec: { containers: [{ name: 'app', image: 'x', ports: [{ containerPort: 8080 }] }] },
  };
}

const noJobs = new JobWorkloads(async () => {
  throw new Error('no Job reads');
});

async function admit(annotations: Record<string, string>) {
  const request: AdmissionRequest = {
    uid: 'u',
    kind: { group: '', version: 'v1', kind: 'Pod' },
    namespace: 'shop',
    operation: 'CREATE',
    object: pod(annotations),
  };
  return (await mutate(request, testInjectionConfig, { usedPorts: () => new Set() }, noJobs, silentLog)).response;
}

function nodeOptions(annotations: Record<string, string>): string | undefined {
  const d = decidePod(pod(annotations), 'shop', testInjectionConfig);
  if (d.kind !== 'patch') throw new Error(JSON.stringify(d));
  const added = d.patch.find((op) => op.path === '/spec/initContainers') as { value: Array<{ env: Array<{ name: string; value: string }> }> };
  return added.value[0]!.env.find((e) => e.name === 'NODE_OPTIONS')?.value;
}

describe('a memory limit Kubernetes accepts is sized, not a 500', () => {
  it('admits "+256Mi" (a signed quantity) with the heap of 256Mi', async () => {
    const response = await admit({ [LIMIT]: '+256Mi' });
    expect(response.status).toBeUndefined();
    expect(response.allowed).toBe(true);
    expect(nodeOptions({ [LIMIT]: '+256Mi' })).toBe(nodeOptions({ [LIMIT]: '256Mi' }));
  });

  it("reads every form of Kubernetes' grammar the same way in both places", () => {
    const cases: Array<[string, number]> = [
      ['256Mi', 256 * 2 ** 20],
      ['+1Gi', 2 ** 30],
      ['0.5Gi', 2 ** 29],
      ['.5Gi', 2 ** 29],
      ['1.Gi', 2 ** 30],
      ['500M', 500e6],
      ['1e9', 1e9],
      ['1E9', 1e9],
      ['2e+8', 2e8],
      ['1E', 1e18],
      ['268435456', 268435456],
      ['300000000000m', 3e8],
      ['100100100u', 100.1001],
    ];
    for (const [raw, value] of cases) {
      expect(parseQuantity(raw), raw).toBe(raw);
      expect(quantityValue(raw), raw).toBeCloseTo(value, 6);
      expect(parsePodSettings({ [LIMIT]: raw }).ok, raw).toBe(true);
    }
  });

  it('refuses what it cannot size with an admission message naming the annotation and the fix, never a 500', async () => {
    for (const [raw, why] of [
      ['-256Mi', 'is not accepted: a resource quantity is never negative; use a Kubernetes quantity such as 100m, 0.5, 128Mi or 1Gi'],
      ['1e400', 'is not accepted: larger than Kubernetes allows (2^63 - 1); use a Kubernetes quantity'],
      ['256 Mi', 'is not accepted; use a Kubernetes quantity such as 100m, 0.5, 128Mi or 1Gi (no spaces)'],
      ['256MiB', 'such as 100m, 0.5, 128Mi or 1Gi'],
      ['+', 'such as 100m, 0.5, 128Mi or 1Gi'],
    ] as const) {
      const response = await admit({ [LIMIT]: raw });
      expect(response.allowed, raw).toBe(false);
      expect(response.status?.code, raw).toBe(400);
      expect(response.status?.message, raw).toContain(`${LIMIT}: `);
      expect(response.status?.message, raw).toContain(JSON.stringify(raw));
      expect(response.status?.message, raw).toContain(why);
    }
  });
});

describe('property: anything validation accepts, the heap sizing handles', () => {
  const piece = fc.constantFrom(
    '+',
    '-',
    '.',
    'e',
    'E',
    'i',
    'n',
    'u',
    'm',
    'k',
    'K',
    'M',
    'G',
    'T',
    'P',
    'Ki',
    'Mi',
    'Gi',
    'Ei',
    ' ',
    '0',
    '1',
    '9',
    '256',
    '1e3',
  );
  const candidate = fc.oneof(
    fc.array(piece, { minLength: 1, maxLength: 8 }).map((a) => a.join('')),
    fc.stringMatching(/^[+-]?(\d{1,20}(\.\d{0,6})?|\.\d{1,6})(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?\d{1,3})?$/),
    fc.string({ maxLength: 12 }),
  );

  it('gives finite, positive V8 flags for every accepted quantity, and the same answer from the annotation parser', () => {
    fc.assert(
      fc.property(candidate, (raw) => {
        let accepted = true;
        try {
          parseQuantity(raw);
        } catch {
          accepted = false;
        }
        expect(parsePodSettings({ [LIMIT]: raw }).ok).toBe(accepted);
        if (!accepted) return;
        const flags = heapFlags(raw);
        expect(flags).toMatch(/^--max-old-space-size=[1-9]\d* --max-semi-space-size=[1-9]\d*$/);
        expect(Number(/=(\d+)/.exec(flags)![1])).toBeLessThanOrEqual(Number.MAX_SAFE_INTEGER);
        expect(decidePod(pod({ [LIMIT]: raw }), 'shop', testInjectionConfig).kind).toBe('patch');
      }),
      { numRuns: 3000 },
    );
  });
});
