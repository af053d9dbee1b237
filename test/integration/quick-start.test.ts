/**
 * README's "Quick start on a cluster", run word for word against a real
 * kube-apiserver (issue 22, points 3 and 19): the image commands with a
 * recording `docker` (no engine runs here), the install block with the real
 * kubectl (only `rollout status` answered by a stand-in: this control plane
 * has no kubelet; the real node's tests run pods), and the opt-in manifest
 * through the apiserver's strict validation. The install prints nothing on
 * stderr (no kubectl warning), and names the image the first block pushed
 * everywhere. README's Helm example renders without cert-manager and the
 * Prometheus Operator, whose kinds a cluster may not have.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dumpYaml, loadAllYaml } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startControlPlane, type ControlPlane } from '../helpers/control-plane.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const root = join(import.meta.dirname, '..', '..');
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const sectionOf = (heading: string) => {
  const start = readme.indexOf(`\n${heading}\n`);
  expect(start, heading).toBeGreaterThan(0);
  const end = readme.indexOf('\n## ', start + heading.length + 2);
  return readme.slice(start, end);
};
const shBlocks = (section: string) => [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
/** The kinds of cert-manager and the Prometheus Operator: a cluster without them refuses these. */
const OPTIONAL_CRD_KINDS = ['Certificate', 'Issuer', 'ServiceMonitor', 'PodMonitor'];

describe("README's cluster quick start, word for word", () => {
  let cp: ControlPlane;
  let work: string;
  let bin: string;
  const [imageBlock, installBlock, appBlock, tryBlock] = shBlocks(sectionOf('## Quick start on a cluster'));

  beforeAll(async () => {
    cp = await startControlPlane(inject('k8sBinDir'));
    // A clone's root, as the quick start is run from: the files it names.
    work = mkdtempSync(join(tmpdir(), 'kueuer-quick-start-'));
    for (const entry of ['manifests', 'Dockerfile', 'charts']) symlinkSync(join(root, entry), join(work, entry));
    bin = join(work, '.bin');
    mkdirSync(bin);
    // docker: records its working directory and arguments (no engine here).
    writeFileSync(join(bin, 'docker'), `#!/bin/bash\necho "$PWD|$*" >> ${join(work, 'docker.log')}\n`);
    // kubectl: the real one against this control plane; `rollout status` cannot finish without a kubelet.
    writeFileSync(
      join(bin, 'kubectl'),
      `#!/bin/bash\ncase " $* " in *" rollout status "*) exit 0 ;; esac\nexec ${join(cp.binDir, 'kubectl')} --kubeconfig ${cp.kubeconfig} "$@"\n`,
    );
    for (const f of ['docker', 'kubectl']) chmodSync(join(bin, f), 0o755);
  }, 5 * 60_000);

  afterAll(async () => {
    if (work) rmSync(work, { recursive: true, force: true });
    await cp?.stop();
  }, 60_000);

  const sh = (script: string) => {
    const r = spawnSync('bash', ['-euo', 'pipefail', '-c', script], {
      cwd: work,
      encoding: 'utf8',
      env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, KUBECONFIG: cp.kubeconfig },
    });
    return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
  };
  /** The image the first block builds and pushes. */
  const pushedImage = () => /docker push (\S+)/.exec(imageBlock!)![1]!;

  it('has the four blocks: image, install, app, try', () => {
    expect([imageBlock, installBlock, appBlock, tryBlock].every((b) => b !== undefined)).toBe(true);
    expect(shBlocks(sectionOf('## Quick start on a cluster'))).toHaveLength(4);
  });

  it('1. builds the image with the shipped Dockerfile and pushes the same tag', () => {
    const r = sh(imageBlock!);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const log = readFileSync(join(work, 'docker.log'), 'utf8').trim().split('\n');
    const image = pushedImage();
    expect(log).toEqual([`${work}|build -t ${image} .`, `${work}|push ${image}`]);
    expect(existsSync(join(work, 'Dockerfile'))).toBe(true);
  });

  it("README's Helm example renders without cert-manager's and the Prometheus Operator's kinds and passes strict validation", () => {
    const block = shBlocks(sectionOf('## Install on a cluster')).find((b) => b.startsWith('helm install'))!;
    // Shell words: unquoted characters and single-quoted strings, quotes removed.
    const words = [...block.replaceAll('\\\n', ' ').matchAll(/(?:'[^']*'|[^\s'])+/g)].map((m) => m[0].replace(/'([^']*)'/g, '$1'));
    expect(words.slice(0, 4)).toEqual(['helm', 'install', 'kueuer', 'charts/kueuer']);
    const args = ['template', ...words.slice(2).filter((w) => w !== '--create-namespace')];
    const r = spawnSync(inject('helmBin'), args, { cwd: work, encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const objects = (loadAllYaml(r.stdout) as Json[]).filter((o) => o);
    expect(objects.filter((o) => OPTIONAL_CRD_KINDS.includes(o.kind)).map((o) => o.kind)).toEqual([]);
    const images = objects.filter((o) => o.kind === 'Deployment').flatMap((d) => d.spec.template.spec.containers.map((c: Json) => c.image));
    expect(new Set(images)).toEqual(new Set([pushedImage()]));
    const secret = objects.find((o) => o.kind === 'Secret' && o.metadata.name === 'kueuer-backend')!;
    expect(Object.keys(secret.data).sort()).toEqual(['KUEUER_BACKEND', 'KUEUER_RABBITMQ_MANAGEMENT_URL']);
    // As --create-namespace would (and as the install block below does, so its apply finds the namespace applied).
    expect(cp.apply(readFileSync(join(root, 'manifests/base/namespace.yaml'), 'utf8')).code).toBe(0);
    const dry = cp.kubectl(['apply', '--dry-run=server', '--validate=strict', '-f', '-'], objects.map((o) => dumpYaml(o)).join('---\n'));
    expect(dry.stderr).toBe('');
    expect(dry.code).toBe(0);
  });

  it("the chart's NOTES.txt (helm install prints it) tells what to do next: the broker Secret when the chart made none, the rollout, the opt-in, check and uninstall", () => {
    const notes = (values: string[]) => {
      const args = ['install', 'kueuer', join(root, 'charts', 'kueuer'), '--namespace', 'queues', '--dry-run=client', ...values.flatMap((v) => ['--set', v])];
      const r = spawnSync(inject('helmBin'), args, { encoding: 'utf8', env: { ...process.env, KUBECONFIG: cp.kubeconfig } });
      expect(r.status, r.stderr).toBe(0);
      return r.stdout.slice(r.stdout.indexOf('NOTES:'));
    };
    const own = notes([]);
    expect(own).toContain('kubectl -n queues create secret generic kueuer-backend');
    expect(own).toContain('kubectl -n queues rollout status deployment/kueuer-webhook');
    expect(own).toContain('kubectl label namespace shop kueuer.io/injection=enabled');
    expect(own).toContain('scripts/uninstall.sh --restore-only');
    expect(notes(['broker.type=rabbitmq', 'broker.url=amqp://u:p@mq:5672'])).not.toContain('create secret generic kueuer-backend \\');
  });

  it('2. installs Kueuer with that image and the broker Secret, and no command prints a warning', () => {
    // kubectl up to 1.33 warns (missing last-applied-configuration) when `kubectl apply` meets an object
    // `kubectl create` made, as README's old `kubectl create namespace` before `apply -k` did; the
    // kubectl here (1.34) no longer prints it, so the cause is checked too: who created what apply manages.
    const managers = (...args: string[]) => (cp.getJson(...args, '--show-managed-fields').metadata.managedFields as Json[]).map((f) => f.manager as string);
    expect(cp.kubectl(['create', 'namespace', 'created-imperatively']).code).toBe(0);
    expect(managers('namespace', 'created-imperatively')).toContain('kubectl-create');
    const r = sh(installBlock!);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const image = pushedImage();
    for (const name of ['kueuer-webhook', 'kueuer-responder']) {
      const containers = cp.getJson('deployment', name, '-n', 'kueuer-system').spec.template.spec.containers as Json[];
      expect(containers.map((c) => c.image)).toEqual([image]);
    }
    const webhookEnv = cp.getJson('deployment', 'kueuer-webhook', '-n', 'kueuer-system').spec.template.spec.containers[0].env as Json[];
    expect(webhookEnv.find((e) => e.name === 'KUEUER_SIDECAR_IMAGE')!.value).toBe(image);
    const secret = cp.getJson('secret', 'kueuer-backend', '-n', 'kueuer-system').data as Record<string, string>;
    expect(Object.keys(secret).sort()).toEqual(['KUEUER_BACKEND', 'KUEUER_RABBITMQ_MANAGEMENT_URL']);
    expect(Buffer.from(secret.KUEUER_BACKEND!, 'base64').toString()).toMatch(/^amqp:\/\//);
    expect(cp.getJson('mutatingwebhookconfiguration', 'kueuer').webhooks).toHaveLength(2);
    expect(managers('namespace', 'kueuer-system')).not.toContain('kubectl-create');
    // Applying it again (an upgrade) is as quiet.
    const again = sh(
      installBlock!
        .split('\n')
        .filter((l) => l.startsWith('kubectl apply'))
        .join('\n'),
    );
    expect(again.stderr).toBe('');
  });

  it('3. the app is one complete Deployment and Service, opted in by the label, that pass strict validation', () => {
    const manifest = /<<'EOF'\n([\s\S]*?)\nEOF/.exec(appBlock!)![1]!;
    const objects = loadAllYaml(manifest) as Json[];
    expect(objects.map((o) => o.kind)).toEqual(['Deployment', 'Service']);
    const [deployment, service] = objects as [Json, Json];
    expect(deployment.spec.template.metadata.labels['kueuer.io/inject']).toBe('true');
    expect(service.metadata.labels['kueuer.io/inject']).toBe('true');
    expect(deployment.spec.template.spec.containers.map((c: Json) => c.image)).toEqual([pushedImage()]);
    expect(service.spec.selector).toEqual(deployment.spec.selector.matchLabels);
    expect(appBlock).toContain('kubectl label namespace shop kueuer.io/injection=enabled');
    // Strict validation in a namespace that is not opted in (no webhook runs here to admit it).
    expect(cp.kubectl(['create', 'namespace', 'shop-unlabelled']).code).toBe(0);
    const r = cp.kubectl(['-n', 'shop-unlabelled', 'apply', '--dry-run=server', '--validate=strict', '-f', '-'], manifest);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    // 4. calls that Service from a pod running the same image.
    expect(tryBlock).toContain(`--image=${pushedImage()}`);
    expect(tryBlock).toContain(`http://${service.metadata.name}/`);
  });
});
