/**
 * Dispatches one admission request on its kind and returns the response.
 * Any failure while building a patch becomes a refusal with the reason:
 * never an allow of a half-patched pod.
 */
import type { V1Pod, V1Service } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { ANNOTATIONS, deprecationWarning } from '../../shared/annotations.js';
import { replyNamespaceProblem } from '../../shared/queue-names.js';
import { allow, mayLeaveTraces, refuse, shapedAsApiserver, type AdmissionRequest, type AdmissionResponse } from './admission-review.js';
import { decidePod, replyFix, type InjectionConfig } from './pod-injection.js';
import { decideServiceReserved } from './service-rewrite.js';
import type { JobWorkloads } from './workload-queue.js';

/** Responder ports already held by Services other than the one being admitted. */
export interface PortRegistry {
  usedPorts(exceptServiceKey: string): ReadonlySet<number>;
  /** Makes a decided port the Service's across replicas (optimistic concurrency on an API object); absent in tests of one process. Never called for a dry run (see mayLeaveTraces). */
  reserve?(serviceKey: string, port: number): Promise<boolean>;
  /** Re-reads the reservations without writing, so that a dry run answers with the port a real admission would reserve. */
  refresh?(): Promise<void>;
}

export type MutateOutcome = 'injected' | 'unchanged' | 'skipped' | 'refused' | 'error' | 'ignored';

export interface MutateResult {
  response: AdmissionResponse;
  outcome: MutateOutcome;
}

/**
 * One log line per admission warning, its text as the message: `warning` is
 * `deprecated-opt-in` for the annotation opt-in (what a search for leftover
 * annotations wants) and `admission` for any other (e.g. a container's own preStop hook).
 */
function logWarnings(log: Logger, fields: Record<string, unknown>, warnings: readonly string[]): void {
  const deprecated = deprecationWarning();
  for (const w of warnings) log.warn({ ...fields, warning: w === deprecated ? 'deprecated-opt-in' : 'admission' }, w);
}

/** `jobs`: reads the Job of a Job-owned pod, to name its queue after the CronJob (or the Job). */
export async function mutate(request: AdmissionRequest, config: InjectionConfig, ports: PortRegistry, jobs: JobWorkloads, log: Logger): Promise<MutateResult> {
  const uid = request.uid;
  try {
    switch (request.kind.kind) {
      case 'Pod': {
        const pod = request.object as V1Pod | undefined;
        if (!pod || typeof pod !== 'object') return { response: refuse(uid, 'request.object is missing'), outcome: 'refused' };
        let decision = decidePod(pod, request.namespace, config);
        if (decision.kind === 'lookup-job') decision = decidePod(pod, request.namespace, config, await jobs.resolve(decision.namespace, decision.owner));
        switch (decision.kind) {
          case 'skip':
            return { response: allow(uid, [], decision.warn ? [decision.reason] : []), outcome: 'skipped' };
          case 'refuse':
            return { response: refuse(uid, `kueuer: ${decision.message}`), outcome: 'refused' };
          case 'patch':
            logWarnings(log, { uid, namespace: request.namespace, kind: 'Pod' }, decision.warnings);
            return {
              response: allow(uid, decision.patch, decision.warnings),
              outcome: decision.patch.length > 0 ? 'injected' : 'unchanged',
            };
          case 'lookup-job':
            throw new Error("the pod's Job was read and still needed");
        }
        break;
      }
      case 'Service': {
        const service = request.object as V1Service | undefined;
        if (!service || typeof service !== 'object') return { response: refuse(uid, 'request.object is missing'), outcome: 'refused' };
        const namespace = service.metadata?.namespace || request.namespace || 'default';
        if (config.excludedNamespaces.includes(namespace)) return { response: allow(uid), outcome: 'skipped' };
        const old = request.operation === 'UPDATE' ? (request.oldObject as V1Service | undefined) : undefined;
        const used = (key: string) => ports.usedPorts(key);
        const writes = mayLeaveTraces(request);
        // The apiserver's dry run answers with the port decided from the reservations as read now (one GET, no write);
        // other reviews that may not write are answered from the cache, so they cost the apiserver nothing.
        if (request.dryRun && shapedAsApiserver(request)) await ports.refresh?.();
        // Decided without a reservation first, so that a refusal (or a dry run) writes nothing.
        const decided = await decideServiceReserved(service, old, request.namespace, used, undefined);
        const replyProblem = decided.kind === 'patch' && decided.queue !== null ? replyNamespaceProblem(decided.queue) : undefined;
        if (replyProblem)
          return { response: refuse(uid, `kueuer: ${ANNOTATIONS.queue}: ${replyProblem}; ${replyFix(request.namespace ?? '')}`), outcome: 'refused' };
        const reserve = writes ? ports.reserve?.bind(ports) : undefined;
        const decision =
          reserve && decided.kind === 'patch' && decided.responderPort !== null
            ? await decideServiceReserved(service, old, request.namespace, used, { reserve })
            : decided;
        switch (decision.kind) {
          case 'skip':
            return { response: allow(uid), outcome: 'skipped' };
          case 'refuse':
            return { response: refuse(uid, `kueuer: ${decision.message}`), outcome: 'refused' };
          case 'patch':
            logWarnings(log, { uid, namespace, kind: 'Service', name: service.metadata?.name }, decision.warnings);
            return { response: allow(uid, decision.patch, decision.warnings), outcome: decision.patch.length > 0 ? 'injected' : 'unchanged' };
        }
        break;
      }
      default:
        // Not ours to change: the webhook configuration should not send it.
        return { response: allow(uid), outcome: 'ignored' };
    }
  } catch (err) {
    log.error({ err: (err as Error).message, uid }, 'admission failed');
    return { response: refuse(uid, `kueuer: internal error while building the patch: ${(err as Error).message}`, 500), outcome: 'error' };
  }
  return { response: refuse(uid, 'kueuer: unreachable'), outcome: 'error' };
}
