import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { serviceTrafficProblem } from '../../cli/traffic-checks.js';
import { formatStatus } from '../../cli/workload-status.js';
import { managementUnreachable, RabbitMqDepth } from '../../shared/transport/amqp/depth.js';
import { isKubernetesManagedSlice, rewrittenServices } from '../../webhook/endpoints/foreign-endpoints.js';
import { freePort } from '../helpers/net.js';

let nextPort = 21000;
const ORIGINAL = JSON.stringify({ selector: { app: 'web' }, targetPorts: [{ port: 80, targetPort: 8080 }] });
const service = (
  name: string,
  selector?: Record<string, string>,
  labels: Record<string, string> = { 'kueuer.io/inject': 'true' },
  original: string | undefined = ORIGINAL,
): V1Service => {
  const port = nextPort++;
  return {
    metadata: {
      namespace: 'shop',
      name,
      labels,
      annotations: { 'kueuer.io/responder-port': String(port), ...(original === undefined ? {} : { 'kueuer.io/original-service': original }) },
    },
    spec: { ...(selector ? { selector } : {}), ports: [{ port: 80, targetPort: port as never }] },
  };
};

const slice = (name: string, managedBy: string, addresses: string[]): V1EndpointSlice => ({
  metadata: { name, namespace: 'shop', labels: { 'kubernetes.io/service-name': 'web', 'endpointslice.kubernetes.io/managed-by': managedBy } },
  addressType: 'IPv4',
  endpoints: addresses.map((a) => ({ addresses: [a] })),
});

describe('the endpoints Kubernetes keeps for a rewritten Service', () => {
  it('are looked for only on Services the webhook rewrote: opted in, a responder port, no selector', () => {
    expect(
      rewrittenServices([
        service('web'),
        service('restored', { app: 'restored' }), // selector back: its controllers own its endpoints
        service('opted-out', undefined, {}),
      ]),
    ).toEqual([{ namespace: 'shop', name: 'web' }]);
  });

  it("never on a Service that had no selector before Kueuer: its Endpoints are its owner's, written by hand", () => {
    const noSelector = JSON.stringify({ selector: null, targetPorts: [{ port: 80, targetPort: 5432 }] });
    expect(rewrittenServices([service('db-proxy', undefined, undefined, noSelector), service('no-record', undefined, undefined, 'not json')])).toEqual([]);
  });

  it("are the Endpoints object and the two Kubernetes controllers' slices, never another manager's", () => {
    expect(isKubernetesManagedSlice(slice('web-abc', 'endpointslice-controller.k8s.io', []))).toBe(true);
    expect(isKubernetesManagedSlice(slice('web-def', 'endpointslicemirroring-controller.k8s.io', []))).toBe(true);
    expect(isKubernetesManagedSlice(slice('kueuer-web', 'kueuer.io', []))).toBe(false);
    expect(isKubernetesManagedSlice(slice('web-mesh', 'mesh.example.com', []))).toBe(false);
  });
});

describe('whether all traffic of a rewritten Service reaches the responders', () => {
  const ours = slice('kueuer-web', 'kueuer.io', ['10.1.0.1']);

  it("is so with Kueuer's slice alone (and slices without addresses beside it)", () => {
    expect(serviceTrafficProblem('web', undefined, [ours, slice('web-abc', 'endpointslice-controller.k8s.io', [])])).toBeNull();
    expect(serviceTrafficProblem('web', { subsets: [] }, [ours])).toBeNull();
  });

  it('names an Endpoints object, a foreign slice with addresses and a missing Kueuer slice', () => {
    expect(serviceTrafficProblem('web', { subsets: [{ addresses: [{ ip: '10.2.0.1' }], notReadyAddresses: [{ ip: '10.2.0.2' }] }] }, [ours])).toBe(
      'an Endpoints object lists 2 address(es) of its own',
    );
    expect(serviceTrafficProblem('web', undefined, [ours, slice('web-abc', 'endpointslice-controller.k8s.io', ['10.2.0.1'])])).toBe(
      'EndpointSlice web-abc (endpointslice-controller.k8s.io) lists 1 address(es)',
    );
    expect(serviceTrafficProblem('web', undefined, [])).toBe('it has no EndpointSlice kueuer-web listing the responders');
  });

  it('is shown by kueuer status under the table, with the fix', () => {
    const text = formatStatus(
      [],
      [],
      [
        { service: 'shop/web', problem: 'an Endpoints object lists 1 address(es) of its own', fix: 'FIX' },
        { service: 'shop/ok', problem: null, fix: 'unused' },
      ],
    );
    expect(text).toContain('\nServices whose traffic bypasses Kueuer:\n  service/shop/web: an Endpoints object lists 1 address(es) of its own\n    fix: FIX\n');
    expect(text).not.toContain('shop/ok');
  });
});

describe("RabbitMQ's management API that does not answer", () => {
  it('is named by its URL (without credentials) with the setting to fix', async () => {
    const closed = await freePort();
    const depth = new RabbitMqDepth(`amqp://user:secret@127.0.0.1:${closed}`);
    const explicit = new RabbitMqDepth('amqp://user:secret@127.0.0.1:5672', `http://admin:pw@127.0.0.1:${closed}`);
    await expect(explicit.read('shop.web')).rejects.toThrow(
      `RabbitMQ's management API at http://127.0.0.1:${closed} did not answer: connection refused: nothing listens on that port (ECONNREFUSED); set KUEUER_RABBITMQ_MANAGEMENT_URL (in the broker Secret, or --rabbitmq-management-url) to RabbitMQ's management API, e.g. http://USER:PASS@HOST:15672`,
    );
    // Without KUEUER_RABBITMQ_MANAGEMENT_URL: the AMQP host on port 15672, named as such.
    const err = (await depth.read('shop.web').catch((e: unknown) => e)) as Error;
    expect(err.message).toMatch(/^RabbitMQ's management API at http:\/\/127\.0\.0\.1:15672 (did not answer: |answered )/);
    expect(err.message).not.toContain('secret');
    expect(managementUnreachable('http://h:15672', new Error('The operation was aborted due to timeout'))).toContain(
      'did not answer: The operation was aborted due to timeout;',
    );
  });
});
