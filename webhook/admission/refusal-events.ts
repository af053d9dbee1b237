/**
 * A refused pod also raises an Event on its workload (the Deployment,
 * StatefulSet, DaemonSet or Job), where `kubectl describe` shows it: without
 * it the refusal is only the ReplicaSet's FailedCreate, one object away from
 * what the user applied. The pod's owner reference names the workload (a
 * Deployment's ReplicaSet is `<deployment>-<pod-template-hash>`); a
 * Deployment's uid, which `kubectl describe` matches Events on, is read
 * through the API once per Deployment. Recording never delays or changes the
 * admission answer: failures are logged.
 */
import type { V1ObjectMeta, V1Pod } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { Cluster } from '../../shared/kube/cluster.js';
import { EventRecorder, type EventSubject } from '../../shared/kube/event-recorder.js';
import { owningWorkloadName } from './workload-queue.js';

export const REFUSED_REASON = 'KueuerRefusedPod';

/** Called for every refused pod; returns at once. */
export type RefusalEvents = (pod: V1Pod, namespace: string, message: string) => void;

/** The workload a pod belongs to: its kind, name and (when the owner reference is the workload itself) uid. */
export function workloadOfPod(meta: V1ObjectMeta, namespace: string): Omit<EventSubject, 'uid'> & { uid?: string } {
  const owner = meta.ownerReferences?.find((o) => o.controller) ?? meta.ownerReferences?.[0];
  if (owner?.kind === 'ReplicaSet') {
    const name = owningWorkloadName(meta);
    // A ReplicaSet that is not a Deployment's has no pod-template-hash suffix to strip: the Event goes on the ReplicaSet.
    if (name !== owner.name) return { apiVersion: 'apps/v1', kind: 'Deployment', name, namespace };
  }
  if (owner) return { apiVersion: owner.apiVersion, kind: owner.kind, name: owner.name, namespace, uid: owner.uid };
  return { apiVersion: 'v1', kind: 'Pod', name: meta.name ?? meta.generateName ?? 'pod', namespace };
}

/** The longest Event message written: what client-go's recorder keeps (events.k8s.io's note is at most 1 kB too). */
export const EVENT_MESSAGE_MAX = 1024;

/**
 * A refusal as an Event's text. The message quotes values from the request
 * (annotations), so control characters (newlines, terminal escapes) become
 * spaces and it is cut to EVENT_MESSAGE_MAX characters: what `kubectl
 * describe` prints stays one bounded line whoever wrote the pod.
 */
export function eventMessage(message: string): string {
  // eslint-disable-next-line no-control-regex -- control characters are what is removed
  const clean = message.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g, ' ');
  return clean.length <= EVENT_MESSAGE_MAX ? clean : `${clean.slice(0, EVENT_MESSAGE_MAX - 1)}…`;
}

/** Records refusals through the process's Cluster (with the webhook's own credentials). */
export function clusterRefusalEvents(cluster: Cluster, log: Logger): RefusalEvents {
  const recorder = new EventRecorder(cluster.clients.core, log, 'workload');
  // list with a field selector: the webhook's RBAC lists Deployments (for autoscaling) but does not get them.
  const deploymentUid = async (namespace: string, name: string) =>
    (await cluster.clients.apps.listNamespacedDeployment({ namespace, fieldSelector: `metadata.name=${name}`, limit: 1 })).items[0]?.metadata?.uid;
  return (pod, namespace, message) => {
    const subject = workloadOfPod(pod.metadata ?? {}, namespace);
    void (async () => {
      // Read each time: a Deployment deleted and created again has a new uid (the ReplicaSet controller backs off, so refusals are few).
      const uid = subject.uid ?? (subject.kind === 'Deployment' ? await deploymentUid(namespace, subject.name) : undefined);
      if (!uid) return;
      await recorder.record({ ...subject, uid }, 'Warning', REFUSED_REASON, eventMessage(message));
    })().catch((err: unknown) =>
      log.warn({ err: (err as Error).message, workload: `${subject.kind}/${namespace}/${subject.name}` }, 'could not record the refusal on the workload'),
    );
  };
}
