/**
 * .github/workflows/release.yml as text (GitHub Actions does not run here):
 * on a v* tag it builds the shipped Dockerfile for two architectures with
 * QEMU and buildx, pushes the image under the version the tag names, and
 * packages and pushes the chart to an OCI registry, after checking that the
 * tag, package.json and the chart agree.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const root = join(import.meta.dirname, '..', '..');
const workflow = parse(readFileSync(join(root, '.github', 'workflows', 'release.yml'), 'utf8')) as Json;
const steps = Object.values(workflow.jobs as Json).flatMap((j: Json) => j.steps as Json[]);
const uses = (action: string) => steps.find((s) => typeof s.uses === 'string' && s.uses.startsWith(`${action}@`));
const scripts = steps.map((s) => (s.run as string | undefined) ?? '').join('\n');

describe('release workflow', () => {
  it('runs on v* tags only, with write access to packages', () => {
    expect(workflow.on).toEqual({ push: { tags: ['v*'] } });
    expect(workflow.permissions).toMatchObject({ packages: 'write' });
  });

  it('builds and pushes the Dockerfile for linux/amd64 and linux/arm64 (QEMU, buildx), tagged with the version', () => {
    expect(uses('docker/setup-qemu-action')).toBeDefined();
    expect(uses('docker/setup-buildx-action')).toBeDefined();
    const build = uses('docker/build-push-action')!;
    expect(build.with.context).toBe('.');
    expect(String(build.with.platforms).split(',').sort()).toEqual(['linux/amd64', 'linux/arm64']);
    expect(build.with.push).toBe(true);
    expect(build.with.tags).toContain('kueuer:${{ steps.version.outputs.version }}');
  });

  it('checks the tag against package.json and the chart, then packages the chart and pushes it to an OCI registry', () => {
    expect(scripts).toContain('test "$(jq -r .version package.json)" = "$version"');
    expect(scripts).toContain('charts/kueuer/Chart.yaml');
    expect(scripts).toMatch(/helm package charts\/kueuer/);
    expect(scripts).toMatch(/helm push "[^"]+\.tgz" "oci:\/\//);
    const chart = parse(readFileSync(join(root, 'charts', 'kueuer', 'Chart.yaml'), 'utf8')) as Json;
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as Json;
    expect([chart.version, chart.appVersion]).toEqual([pkg.version, pkg.version]);
  });
});
