/**
 * metrics-server (sigs.k8s.io/metrics-server, built by
 * scripts/scenario/metrics-server.sh) for the real node: the resource-metrics
 * API a CPU HorizontalPodAutoscaler reads. It runs beside the node as a
 * process (the harness has no registry for a third image, and it needs
 * nothing a pod has): it scrapes the kubelet's /metrics/resource at the
 * node's InternalIP with the admin client certificate the kubelet trusts,
 * and serves `metrics.k8s.io` on the bridge address, where the Service
 * `kube-system/metrics-server` (no selector, one endpoint: that address) and
 * the APIService v1beta1.metrics.k8s.io send the apiserver. Its files are
 * under the node's directory, so the node's stop (or the next start after a
 * crash) ends it too.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { get, startLogged } from '../../test/helpers/control-plane.js';
import { waitFor } from '../../test/helpers/poll.js';
import { LOG_DIR, type RealCluster } from '../../test/helpers/node.js';
import { freePort } from '../../test/helpers/net.js';

const NODE_DIR = '/var/lib/kueuer-node';

export const metricsApiObjects = (address: string, port: number) => `apiVersion: v1
kind: Service
metadata: {name: metrics-server, namespace: kube-system}
spec: {ports: [{name: https, port: 443, targetPort: ${port}}]}
---
apiVersion: v1
kind: Endpoints
metadata: {name: metrics-server, namespace: kube-system}
subsets: [{addresses: [{ip: ${address}}], ports: [{name: https, port: ${port}}]}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: metrics-server-host, namespace: kube-system, labels: {kubernetes.io/service-name: metrics-server}}
addressType: IPv4
endpoints: [{addresses: [${address}], conditions: {ready: true}}]
ports: [{name: https, port: ${port}, protocol: TCP}]
---
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata: {name: v1beta1.metrics.k8s.io}
spec:
  service: {name: metrics-server, namespace: kube-system, port: 443}
  group: metrics.k8s.io
  version: v1beta1
  insecureSkipTLSVerify: true
  groupPriorityMinimum: 100
  versionPriority: 100
`;

export async function startMetricsServer(cluster: RealCluster, bin: string): Promise<{ stop(): void }> {
  const cp = cluster.controlPlane;
  const port = await freePort();
  const dir = join(NODE_DIR, 'metrics-server');
  mkdirSync(dir, { recursive: true });
  const log = join(LOG_DIR, 'metrics-server.log');
  const child = startLogged(
    bin,
    [
      `--kubeconfig=${cp.kubeconfig}`,
      `--authentication-kubeconfig=${cp.kubeconfig}`,
      `--authorization-kubeconfig=${cp.kubeconfig}`,
      `--bind-address=${cluster.bridgeGateway}`,
      `--secure-port=${port}`,
      `--cert-dir=${dir}`,
      '--kubelet-insecure-tls',
      '--kubelet-preferred-address-types=InternalIP',
      '--kubelet-use-node-status-port',
      '--metric-resolution=15s',
    ],
    log,
  );
  const stop = () => {
    if (child.exitCode === null) child.kill('SIGTERM');
  };
  try {
    await waitFor(async () => (await get(`https://${cluster.bridgeGateway}:${port}/livez`, { rejectUnauthorized: false })) === 200, 60_000, 'metrics-server', {
      tolerateErrors: true,
      logFile: log,
      child,
    });
    const applied = cp.apply(metricsApiObjects(cluster.bridgeGateway, port));
    if (applied.code !== 0) throw new Error(`the metrics API objects: ${applied.stderr}`);
    return { stop };
  } catch (err) {
    stop();
    throw err;
  }
}
