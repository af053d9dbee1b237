import { networkInterfaces } from 'node:os';

/** This machine's first external IPv4: EndpointSlices refuse loopback, so a process the apiserver calls through a Service listens here. */
export function hostAddress(): string {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  throw new Error('no non-loopback IPv4 address: the apiserver cannot reach a webhook through a Service (EndpointSlices refuse loopback)');
}

/** An EndpointSlice making `address:port` the endpoint of a Service's named port (no endpoint controller runs in the test cluster). */
export function localEndpointSlice(service: { namespace: string; name: string; portName: string }, address: string, port: number): object {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: `${service.name}-local`, namespace: service.namespace, labels: { 'kubernetes.io/service-name': service.name } },
    addressType: 'IPv4',
    endpoints: [{ addresses: [address], conditions: { ready: true } }],
    ports: [{ name: service.portName, port, protocol: 'TCP' }],
  };
}
