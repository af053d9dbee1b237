/**
 * `kueuer inject -f FILE`: prints a manifest's objects as the webhook would
 * admit their pods (like `istioctl kube-inject`), through the webhook's own
 * pipeline (webhook/manifest-injection.ts calls webhook/mutate.ts). Any
 * refusal prints nothing on stdout, so `kueuer inject -f x | kubectl apply -f -`
 * never applies half a manifest.
 */
import { readFileSync } from 'node:fs';
import pino from 'pino';
import { parseAllDocuments, stringify } from 'yaml';
import { dnsLabel } from '../shared/options.js';
import { kueuerVersion } from '../shared/version.js';
import { defaultWebhookSettings, injectionConfig, webhookOptions } from '../webhook/config.js';
import { injectObject } from '../webhook/manifest-injection.js';
import type { Command } from './commands.js';

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

/**
 * YAML 1.1, as kubectl reads manifests (sigs.k8s.io/yaml, go-yaml): `yes`,
 * `on` and `off` are booleans and `0644` is octal, so what comes in and what
 * goes out mean to kubectl what they meant in the user's file.
 */
const KUBECTL_YAML = { version: '1.1' } as const;

/** Reads the manifest's documents; a YAML error names the document and the line. */
export function parseManifest(text: string, source: string): unknown[] {
  const docs = parseAllDocuments(text, KUBECTL_YAML);
  if (!Array.isArray(docs)) return [];
  const out: unknown[] = [];
  docs.forEach((doc, i) => {
    const error = doc.errors[0];
    if (error) throw new Error(`${source}: document ${i + 1}: ${error.message.split('\n')[0]}`);
    if (doc.contents !== null) out.push(doc.toJS());
  });
  return out;
}

/** The documents as one multi-document YAML text. */
export function printManifest(objects: unknown[]): string {
  return objects.map((o) => stringify(o, { ...KUBECTL_YAML, lineWidth: 0 })).join('---\n');
}

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
  return `document ${index + 1} (${meta.kind ?? 'no kind'}${name})`;
}

export const injectCommand: Command<typeof injectOptions> = {
  name: 'inject',
  usage: 'kueuer inject -f FILE|- [-n NAMESPACE] [options]',
  summary: 'Prints a manifest with the sidecar injected into its pod templates, as the webhook would admit them.',
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
    let objects: unknown[];
    try {
      objects = parseManifest(text, source);
    } catch (err) {
      process.stderr.write(`kueuer inject: invalid YAML in ${(err as Error).message}\n`);
      return 1;
    }
    if (objects.length === 0) {
      process.stderr.write(`kueuer inject: ${source} holds no documents\n`);
      return 1;
    }
    const problems = objects.flatMap((obj, i) => {
      const problem = documentProblem(obj);
      return problem ? [`kueuer inject: document ${i + 1} of ${source}: ${problem}\n`] : [];
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
      for (const w of r.warnings) process.stderr.write(`kueuer inject: warning: ${describeObject(objects[i], i)}: ${w}\n`);
      if (r.refusal) {
        refused = true;
        process.stderr.write(`kueuer inject: ${describeObject(objects[i], i)}: the webhook would refuse its pods: ${r.refusal}\n`);
      }
    });
    if (refused) return 1;
    process.stdout.write(printManifest(results.map((r) => r.object)));
    return 0;
  },
};
