import type { KubernetesObject } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { ManagedSet, type ManagedStore } from '../../shared/kube/managed-set.js';
import { StaticObjectSource } from '../../shared/kube/object-source.js';
import { SerialRuns } from '../../shared/serial.js';

type Obj = KubernetesObject & { value: number };
const obj = (name: string, value: number, resourceVersion?: string): Obj => ({
  metadata: { namespace: 'ns', name, ...(resourceVersion ? { resourceVersion } : {}) },
  value,
});

function fakeStore(initial: Obj[]) {
  const calls: string[] = [];
  const store: ManagedStore<Obj> & { source: StaticObjectSource<Obj> } = {
    source: new StaticObjectSource(initial),
    create: async (o) => void calls.push(`create ${o.metadata!.name}`),
    replace: async (o, rv) => void calls.push(`replace ${o.metadata!.name}@${rv}`),
    remove: async (_ns, name) => {
      calls.push(`remove ${name}`);
      if (name === 'gone') throw Object.assign(new Error('not found'), { code: 404 });
    },
  };
  return { store, calls };
}

describe('managed set', () => {
  it('creates the missing, replaces the drifted, keeps the same and removes the unwanted', async () => {
    const { store, calls } = fakeStore([obj('same', 1, '5'), obj('drifted', 1, '6'), obj('stale', 1, '7'), obj('gone', 1)]);
    const reported: string[] = [];
    const set = new ManagedSet<Obj, string>({
      store,
      desired: async () => [obj('same', 1), obj('drifted', 2), obj('new', 3)].map((object) => ({ object, context: `ctx-${object.metadata!.name}` })),
      fingerprint: (o) => String(o.value),
      written: async (change, w) => void reported.push(`${change} ${w.context}`),
      writeFailed: () => undefined,
      removed: (_stale, key) => void reported.push(`removed ${key}`),
      removeFailed: (err, _stale, key) => void reported.push(`remove failed ${key} ${(err as { code?: number }).code}`),
      runFailed: () => undefined,
    });
    await set.reconcile();
    expect(calls).toEqual(['replace drifted@6', 'create new', 'remove stale', 'remove gone']);
    expect(reported).toEqual(['replaced ctx-drifted', 'created ctx-new', 'removed ns/stale', 'remove failed ns/gone 404']);
  });

  it('reports a failed write with whether the object existed, and goes on', async () => {
    const { store } = fakeStore([obj('a', 1)]);
    store.replace = async () => {
      throw new Error('conflict');
    };
    const failures: string[] = [];
    const set = new ManagedSet<Obj, undefined>({
      store,
      desired: async () => [{ object: obj('a', 2), context: undefined }],
      fingerprint: (o) => String(o.value),
      writeFailed: (err, _w, existed, key) => void failures.push(`${key} ${existed} ${(err as Error).message}`),
      removeFailed: () => undefined,
      runFailed: () => undefined,
    });
    await set.reconcile();
    expect(failures).toEqual(['ns/a true conflict']);
  });

  it('runs once at start, again on every change of a source, and reports a run that throws', async () => {
    const { store } = fakeStore([]);
    const other = new StaticObjectSource<Obj>();
    let runs = 0;
    const errors: unknown[] = [];
    const set = new ManagedSet<Obj, undefined>({
      store,
      desired: async () => {
        runs++;
        if (runs === 2) throw new Error('boom');
        return [];
      },
      fingerprint: (o) => String(o.value),
      writeFailed: () => undefined,
      removeFailed: () => undefined,
      runFailed: (err) => void errors.push((err as Error).message),
    });
    await set.start([other], 60_000);
    expect(runs).toBe(1);
    other.set([]);
    store.source.set([]);
    await set.stop();
    expect(runs).toBe(3);
    expect(errors).toEqual(['boom']);
  });
});

describe('serial runs', () => {
  it('runs tasks one at a time in order, and a failure does not stop the next', async () => {
    const order: string[] = [];
    const errors: unknown[] = [];
    const runs = new SerialRuns((err) => errors.push(err));
    const task =
      (name: string, ms: number, fail = false) =>
      async () => {
        order.push(`start ${name}`);
        await new Promise((r) => setTimeout(r, ms));
        order.push(`end ${name}`);
        if (fail) throw new Error(name);
      };
    void runs.run(task('a', 20, true));
    const b = runs.run(task('b', 1));
    await b;
    await runs.idle();
    expect(order).toEqual(['start a', 'end a', 'start b', 'end b']);
    expect(errors).toHaveLength(1);
  });
});
