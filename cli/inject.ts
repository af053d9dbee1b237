/**
 * `kueuer inject -f FILE`: prints a manifest's objects as the webhook would
 * admit their pods (like `istioctl kube-inject`), through the webhook's own
 * pipeline (webhook/admission/manifest-injection.ts calls webhook/admission/mutate.ts). Any
 * refusal prints nothing on stdout, so `kueuer inject -f x | kubectl apply -f -`
 * never applies half a manifest. What would not work as meant in the cluster
 * is a warning on stderr (cli/inject-advice.ts); the YAML keeps the user's
 * comments (cli/inject-yaml.ts).
 */
import { readFileSync } from 'node:fs';
import pino from 'pino';
import { dnsLabel } from '../shared/options.js';
import { kueuerVersion } from '../shared/version.js';
import { defaultWebhookSettings, injectionConfig, webhookOptions } from '../webhook/config.js';
import { injectObject } from '../webhook/admission/manifest-injection.js';
import type { Command } from './command.js';
import { manifestAdvice } from './inject-advice.js';
import { parseManifest, printManifest, type ManifestDocument } from './inject-yaml.js';

export const injectOptions = {
  filename: {
    flag: 'filename',
    env: 'KUEUER_INJECT_FILENAME',
    description: 'the manifest (multi-document YAML or JSON); - reads stdin (short: -f)',
    parse: (raw: string) => raw,
  },
  namespace: {
    flag: 'namespace',
    env: 'KUEUER_INJECT_NAMESPACE',
    description: 'namespace of objects that name none (it is part of the queue name; short: -n)',
    defaultValue: 'default',
    parse: dnsLabel('a namespace name'),
  },
  sidecarImage: webhookOptions.sidecarImage,
  backendSecret: webhookOptions.backendSecret,
  nativeSidecars: {
    ...webhookOptions.nativeSidecars,
    description: 'inject a native sidecar (init container with restartPolicy Always); auto = true here (no cluster is asked): use false for Kubernetes < 1.29',
  },
  systemNamespace: webhookOptions.systemNamespace,
  sidecarAdminPort: webhookOptions.sidecarAdminPort,
  sidecarCpuRequest: webhookOptions.sidecarCpuRequest,
  sidecarMemoryRequest: webhookOptions.sidecarMemoryRequest,
  sidecarMemoryLimit: webhookOptions.sidecarMemoryLimit,
};

const namespaceName = dnsLabel('a namespace name');

/**
 * Why a document cannot go through the webhook's pipeline, or null: it must
 * be a Kubernetes object (a map with apiVersion and kind) in a valid
 * namespace; a List's items are judged one by one.
 */
export function documentProblem(o: unknown): string | null {
  if (typeof o !== 'object' || o === null || Array.isArray(o)) return 'not a Kubernetes object (a map with apiVersion and kind)';
  const obj = o as { apiVersion?: unknown; kind?: unknown; metadata?: { namespace?: unknown }; items?: unknown };
  if (typeof obj.apiVersion !== 'string' || obj.apiVersion === '' || typeof obj.kind !== 'string' || obj.kind === '')
    return 'not a Kubernetes object: apiVersion and kind must be non-empty strings';
  const ns = obj.metadata?.namespace;
  if (ns !== undefined) {
    if (typeof ns !== 'string') return 'metadata.namespace must be a string';
    try {
      namespaceName(ns);
    } catch (err) {
      return `metadata.namespace: ${(err as Error).message}`;
    }
  }
  if (obj.kind === 'List' && Array.isArray(obj.items)) {
    for (const [i, item] of obj.items.entries()) {
      const problem = documentProblem(item);
      if (problem) return `items[${i}]: ${problem}`;
    }
  }
  return null;
}

function describeObject(o: unknown, index: number): string {
  const meta = (o as { kind?: string; metadata?: { name?: string; namespace?: string } } | null) ?? {};
  const name = meta.metadata?.name ? ` ${meta.metadata.namespace ? `${meta.metadata.namespace}/` : ''}${meta.metadata.name}` : '';
  return `document ${index} (${meta.kind ?? 'no kind'}${name})`;
}

export const injectCommand: Command<typeof injectOptions> = {
  name: 'inject',
  usage: 'kueuer inject -f FILE|- [-n NAMESPACE] [options]',
  summary: 'Prints a manifest with the sidecar injected into its opted-in pod templates, as the webhook would admit them.',
  details:
    'Opt-in is the label kueuer.io/inject: "true" on a pod template or a Service. A pod template opted in by the deprecated ' +
    'annotation alone is injected here, but in the cluster the webhook never sees it (its objectSelector matches the label): ' +
    'a warning says so. Warnings on stderr (exit status 0) also name: nothing opted in, an unknown kueuer.io/ key, a Service ' +
    'and its pods on different queues, an app port guessed among several containers.',
  options: injectOptions,
  aliases: { '-f': '--filename', '-n': '--namespace' },
  async run(o) {
    const source = o.filename === '-' ? 'stdin' : o.filename;
    let text: string;
    try {
      text = readFileSync(o.filename === '-' ? 0 : o.filename, 'utf8');
    } catch (err) {
      process.stderr.write(`kueuer inject: cannot read ${source}: ${(err as Error).message}\n`);
      return 1;
    }
    let docs: ManifestDocument[];
    try {
      docs = parseManifest(text, source);
    } catch (err) {
      process.stderr.write(`kueuer inject: invalid YAML in ${(err as Error).message}\n`);
      return 1;
    }
    const objects = docs.map((d) => d.value);
    if (objects.length === 0) {
      process.stderr.write(`kueuer inject: ${source} holds no documents\n`);
      return 1;
    }
    const problems = docs.flatMap(({ value, index }) => {
      const problem = documentProblem(value);
      return problem ? [`kueuer inject: document ${index} of ${source}: ${problem}\n`] : [];
    });
    if (problems.length > 0) {
      for (const line of problems) process.stderr.write(line);
      return 1;
    }
    const config = injectionConfig({ ...defaultWebhookSettings(), ...o }, o.nativeSidecars !== 'false', kueuerVersion());
    const log = pino({ level: 'silent' });
    const results = await Promise.all(objects.map((obj) => injectObject(obj, o.namespace, config, log)));
    let refused = false;
    results.forEach((r, i) => {
      for (const w of r.warnings) process.stderr.write(`kueuer inject: warning: ${describeObject(objects[i], docs[i]?.index ?? i + 1)}: ${w}\n`);
      if (r.refusal) {
        refused = true;
        process.stderr.write(`kueuer inject: ${describeObject(objects[i], docs[i]?.index ?? i + 1)}: the webhook would refuse its pods: ${r.refusal}\n`);
      }
    });
    if (refused) return 1;
    const advice = manifestAdvice(
      docs.map((d, i) => ({ what: describeObject(d.value, d.index), before: d.value, after: results[i]?.object })),
      source,
      o.namespace,
    );
    for (const line of advice) process.stderr.write(`kueuer inject: warning: ${line}\n`);
    process.stdout.write(printManifest(docs.map((d, i) => ({ ...d, result: results[i]?.object }))));
    return 0;
  },
};
