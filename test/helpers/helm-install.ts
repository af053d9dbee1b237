/**
 * README's "Helm" section as a test runs it on the real node: `helm install` of
 * charts/kueuer into kueuer-system with the image under test and the caller's
 * values, waiting for the rollout. Used by test/helpers/kafka-install.ts
 * (a broker Secret of one's own) and test/node/install-paths.test.ts (keda mode).
 */
import { join } from 'node:path';
import { runTool, type ScriptResult } from './real-install.js';

const root = join(import.meta.dirname, '..', '..');

export interface HelmInstall {
  helmBin: string;
  /** repository:tag, split into image.repository and image.tag. */
  imageRef: string;
  /** Further `--set` values, in order. */
  values?: Record<string, string>;
  /** `--create-namespace`: the chart's namespace does not exist yet. */
  createNamespace?: boolean;
  env: NodeJS.ProcessEnv;
}

export function helmInstallKueuer({ helmBin, imageRef, values = {}, createNamespace = false, env }: HelmInstall): Promise<ScriptResult> {
  const colon = imageRef.lastIndexOf(':');
  const sets = { 'image.repository': imageRef.slice(0, colon), 'image.tag': imageRef.slice(colon + 1), ...values };
  const args = [
    ...['install', 'kueuer', join(root, 'charts', 'kueuer'), '--namespace', 'kueuer-system'],
    ...(createNamespace ? ['--create-namespace'] : []),
    ...Object.entries(sets).flatMap(([key, value]) => ['--set', `${key}=${value}`]),
    ...['--wait', '--timeout', '5m'],
  ];
  return runTool(helmBin, args, env, 360_000);
}
