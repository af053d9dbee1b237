/**
 * admission.k8s.io/v1 AdmissionReview in and out, as pure functions. The
 * request is validated before anything else: a body that is not an
 * AdmissionReview v1 is a client error (4xx), never an allow.
 */
import type { Operation } from 'fast-json-patch';

export interface AdmissionRequest {
  uid: string;
  kind: { group: string; version: string; kind: string };
  namespace?: string;
  operation?: string;
  name?: string;
  object?: unknown;
  oldObject?: unknown;
  dryRun?: boolean;
  /** Who made the request the apiserver admits; always set by the apiserver. */
  userInfo?: { username?: string; uid?: string; groups?: string[] };
}

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  patchType?: 'JSONPatch';
  patch?: string;
  status?: { code: number; message: string; reason?: string };
  warnings?: string[];
  auditAnnotations?: Record<string, string>;
}

export interface AdmissionReview {
  apiVersion: 'admission.k8s.io/v1';
  kind: 'AdmissionReview';
  request?: AdmissionRequest;
  response?: AdmissionResponse;
}

export class BadReviewError extends Error {}

export function parseAdmissionReview(body: unknown): AdmissionRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new BadReviewError('the body is not a JSON object');
  const review = body as Record<string, unknown>;
  if (review.kind !== 'AdmissionReview') throw new BadReviewError('kind must be AdmissionReview');
  if (review.apiVersion !== 'admission.k8s.io/v1') {
    throw new BadReviewError(
      `apiVersion ${JSON.stringify(review.apiVersion ?? null)} is not supported; register the webhook with admissionReviewVersions: ["v1"]`,
    );
  }
  const request = review.request as Record<string, unknown> | undefined;
  if (typeof request !== 'object' || request === null) throw new BadReviewError('request is missing');
  if (typeof request.uid !== 'string' || request.uid === '') throw new BadReviewError('request.uid is missing');
  const kind = request.kind as Record<string, unknown> | undefined;
  if (typeof kind !== 'object' || kind === null || typeof kind.kind !== 'string') throw new BadReviewError('request.kind is missing');
  return request as unknown as AdmissionRequest;
}

export function reviewOf(response: AdmissionResponse): AdmissionReview {
  return { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response };
}

export function allow(uid: string, patch: Operation[] = [], warnings: string[] = []): AdmissionResponse {
  const response: AdmissionResponse = { uid, allowed: true };
  if (patch.length > 0) {
    response.patchType = 'JSONPatch';
    response.patch = Buffer.from(JSON.stringify(patch)).toString('base64');
  }
  if (warnings.length > 0) response.warnings = warnings;
  return response;
}

export function refuse(uid: string, message: string, code = 400): AdmissionResponse {
  return { uid, allowed: false, status: { code, message, reason: code === 400 ? 'BadRequest' : 'InternalError' } };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Whether an admission may leave durable traces (a responder-port reservation,
 * an Event): not a dry run (the webhooks are declared sideEffects:
 * NoneOnDryRun), and shaped as only the apiserver sends it: a UUID uid and the
 * requesting user. The shape keeps probes, link checkers and hand-made reviews
 * from writing; it is no authentication (anyone who can reach /mutate can copy
 * it), which is why docs/webhook.md asks for the NetworkPolicy that lets only
 * the apiserver reach the webhook's port. Their answer is the same either way.
 */
export function mayLeaveTraces(request: AdmissionRequest): boolean {
  return request.dryRun !== true && shapedAsApiserver(request);
}

/** A UUID uid and the requesting user, as every review the apiserver sends carries. */
export function shapedAsApiserver(request: AdmissionRequest): boolean {
  return UUID.test(request.uid) && typeof request.userInfo?.username === 'string' && request.userInfo.username !== '';
}
