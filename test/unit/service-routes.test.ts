import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { routesFromServices, usedResponderPorts } from '../../shared/service-routes.js';
import { desiredSlices, sliceName } from '../../webhook/endpoints/endpoint-mirror.js';
import { allocateResponderPort, RESPONDER_PORT_RANGE } from '../../webhook/admission/service-rewrite.js';

function svc(ns: string, name: string, port: number | undefined, extra: Record<string, string> = {}, created = '2026-01-01T00:00:00Z'): V1Service {
  return {
    metadata: {
      namespace: ns,
      name,
      uid: `uid-${ns}-${name}`,
      creationTimestamp: created as unknown as Date,
      annotations: { 'kueuer.io/inject': 'true', ...(port !== undefined ? { 'kueuer.io/responder-port': String(port) } : {}), ...extra },
    },
    spec: {
      ports: [
        { name: 'http', port: 80, targetPort: port as never },
        { name: 'alt', port: 8080, targetPort: port as never },
      ],
    },
  };
}

describe('routes from Services', () => {
  it('maps each responder port to its Service queue and timeout', () => {
    const table = routesFromServices([
      svc('shop', 'web', 21000, { 'kueuer.io/timeout': '2m' }),
      svc('shop', 'checkout', 21001, { 'kueuer.io/queue': 'orders' }),
      svc('shop', 'pending', undefined), // not yet rewritten
      { metadata: { namespace: 'shop', name: 'plain', annotations: { 'kueuer.io/responder-port': '21002' } } }, // inject removed
    ]);
    expect(table.routes).toEqual([
      { service: 'shop/web', port: 21000, queue: 'shop.web', timeoutMs: 120_000 },
      { service: 'shop/checkout', port: 21001, queue: 'shop.orders' },
    ]);
    expect(table.conflicts).toEqual([]);
  });

  it('gives a contested port to the older Service and reports the newer', () => {
    const table = routesFromServices([svc('b', 'new', 21000, {}, '2026-02-01T00:00:00Z'), svc('a', 'old', 21000, {}, '2026-01-01T00:00:00Z')]);
    expect(table.routes.map((r) => r.service)).toEqual(['a/old']);
    expect(table.conflicts).toEqual([{ service: 'b/new', port: 21000, heldBy: 'a/old' }]);
  });

  it('lists the ports other Services hold', () => {
    const services = [svc('shop', 'web', 21000), svc('shop', 'api', 21001)];
    expect([...usedResponderPorts(services, 'shop/web')]).toEqual([21001]);
  });
});

describe('responder port allocation', () => {
  it('is stable for a Service, keeps its current port, and skips ports others hold', () => {
    const first = allocateResponderPort('shop/web', undefined, new Set())!;
    expect(first).toBeGreaterThanOrEqual(RESPONDER_PORT_RANGE.first);
    expect(first).toBeLessThanOrEqual(RESPONDER_PORT_RANGE.last);
    expect(allocateResponderPort('shop/web', undefined, new Set())).toBe(first);
    expect(allocateResponderPort('shop/web', undefined, new Set([first]))).not.toBe(first);
    expect(allocateResponderPort('shop/web', 25000, new Set())).toBe(25000);
    expect(allocateResponderPort('shop/web', 25000, new Set([25000]))).not.toBe(25000);
    const all = new Set(Array.from({ length: RESPONDER_PORT_RANGE.last - RESPONDER_PORT_RANGE.first + 1 }, (_, i) => RESPONDER_PORT_RANGE.first + i));
    expect(allocateResponderPort('shop/web', undefined, all)).toBeNull();
  });
});

describe('EndpointSlices of queued Services', () => {
  const responder: V1EndpointSlice = {
    addressType: 'IPv4',
    endpoints: [
      { addresses: ['10.0.0.5'], conditions: { ready: true }, nodeName: 'n1' },
      { addresses: ['10.0.1.7'], conditions: { ready: false }, nodeName: 'n2' },
    ],
    ports: [{ name: 'http', port: 8080 }],
  };

  it("lists the responder pods on the Service's responder port, one port entry per Service port name", () => {
    const [slice, ...rest] = desiredSlices([svc('shop', 'web', 21000)], [responder]);
    expect(rest).toEqual([]);
    expect(slice!.metadata).toEqual({
      name: 'kueuer-web',
      namespace: 'shop',
      labels: { 'kubernetes.io/service-name': 'web', 'endpointslice.kubernetes.io/managed-by': 'kueuer.io' },
      annotations: { 'kueuer.io/responder-port': '21000' },
      ownerReferences: [{ apiVersion: 'v1', kind: 'Service', name: 'web', uid: 'uid-shop-web', controller: true, blockOwnerDeletion: true }],
    });
    expect(slice!.endpoints).toEqual([
      { addresses: ['10.0.0.5'], conditions: { ready: true }, nodeName: 'n1' },
      { addresses: ['10.0.1.7'], conditions: { ready: false }, nodeName: 'n2' },
    ]);
    expect(slice!.ports).toEqual([
      { name: 'http', port: 21000, protocol: 'TCP' },
      { name: 'alt', port: 21000, protocol: 'TCP' },
    ]);
  });

  it('keeps slice names within 63 characters', () => {
    expect(sliceName('x'.repeat(70)).length).toBeLessThanOrEqual(63);
  });
});
