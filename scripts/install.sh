#!/usr/bin/env bash
# Installs Kueuer on the cluster kubectl points at, without cert-manager:
#   1. a CA and the webhook's serving certificate (scripts/gen-certs.sh),
#      stored as the Secret kueuer-system/kueuer-webhook-tls;
#   2. the manifests (base or an overlay) with the CA as caBundle of the
#      MutatingWebhookConfiguration and the external metrics APIService;
#   3. waits until the webhook and responder Deployments are ready.
# It refuses, before applying anything, when another metrics server (KEDA,
# prometheus-adapter, Datadog) owns v1beta1.external.metrics.k8s.io and this
# install would take it over: use the keda component then. With it, the
# Secret kueuer-backlog-tls (the CA KEDA verifies the webhook with) is created
# in KEDA's namespace (KUEUER_KEDA_NAMESPACE, default keda).
#
#   scripts/install.sh [KUSTOMIZE_DIR]     # default: manifests (the base); or an
#     overlay, or your kustomization of the base and components (README)
#   KUEUER_CERT_DIR=… keeps the certificates somewhere other than a temp dir.
# Needs kubectl and openssl. The broker Secret is yours to create (see
# manifests/base/backend-secret.example.yaml), or use the rabbitmq or kafka
# component, whose Secret replaces one created before.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="${1:-$root/manifests}"
certs="${KUEUER_CERT_DIR:-$(mktemp -d)}"
command -v kubectl >/dev/null || { echo "kubectl is needed" >&2; exit 1; }

rendered="$(kubectl kustomize "$dir")"

# Only one external.metrics.k8s.io APIService can exist per cluster. When this
# install would apply Kueuer's and another metrics server (KEDA,
# prometheus-adapter, Datadog) owns it, refuse, as the webhook itself does
# (webhook/autoscaling/metrics-owner.ts, same message).
apiservice=v1beta1.external.metrics.k8s.io
if grep -q "name: $apiservice" <<<"$rendered"; then
  owner="$(kubectl get apiservice "$apiservice" -o jsonpath='{.spec.service.namespace}/{.spec.service.name}' 2>/dev/null || true)"
  if [ -n "$owner" ] && [ "$owner" != "kueuer-system/kueuer-webhook" ]; then
    if [ "$owner" = "/" ]; then owner="the API server itself (no spec.service)"; fi
    case "$owner" in
      *keda*) fix="run Kueuer with --autoscaling keda (KUEUER_AUTOSCALING=keda; the keda component or the chart's autoscaling.mode=keda)" ;;
      *prometheus-adapter*) fix="run Kueuer with --autoscaling prometheus-adapter (KUEUER_AUTOSCALING=prometheus-adapter; the chart's autoscaling.mode=prometheus-adapter)" ;;
      *) fix="uninstall the other metrics server (kubectl delete apiservice $apiservice), or run Kueuer with --autoscaling keda or --autoscaling prometheus-adapter if it is KEDA or prometheus-adapter" ;;
    esac
    echo "APIService $apiservice is owned by $owner, not Kueuer's kueuer-system/kueuer-webhook: only one external metrics server can run per cluster, so --autoscaling external refuses to take it over; $fix" >&2
    exit 1
  fi
fi

if [ ! -f "$certs/tls.crt" ]; then
  bash "$root/scripts/gen-certs.sh" "$certs" >/dev/null
fi
ca_bundle="$(base64 < "$certs/ca.crt" | tr -d '\n')"

kubectl apply -f "$root/manifests/base/namespace.yaml"
kubectl -n kueuer-system create secret generic kueuer-webhook-tls \
  --from-file=tls.crt="$certs/tls.crt" --from-file=tls.key="$certs/tls.key" --from-file=ca.crt="$certs/ca.crt" \
  --dry-run=client -o yaml | kubectl apply -f -

# keda mode: KEDA's metrics-api scaler verifies the webhook's certificate with
# this CA (ClusterTriggerAuthentication kueuer-backlog, in KEDA's namespace).
# Its authMode tls also wants a client certificate: a throwaway one, never sent.
if grep -q "kind: ClusterTriggerAuthentication" <<<"$rendered"; then
  keda_ns="${KUEUER_KEDA_NAMESPACE:-keda}"
  if [ ! -f "$certs/keda-client.crt" ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 -subj /CN=keda-kueuer-backlog \
      -keyout "$certs/keda-client.key" -out "$certs/keda-client.crt" 2>/dev/null
  fi
  kubectl -n "$keda_ns" create secret generic kueuer-backlog-tls \
    --from-file=ca.crt="$certs/ca.crt" --from-file=tls.crt="$certs/keda-client.crt" --from-file=tls.key="$certs/keda-client.key" \
    --dry-run=client -o yaml | kubectl apply -f -
fi

# The only empty caBundle fields are the webhook configuration's and the APIService's.
sed "s|caBundle: \"\"|caBundle: $ca_bundle|" <<<"$rendered" | kubectl apply -f -

kubectl -n kueuer-system rollout status deployment/kueuer-webhook --timeout=180s
kubectl -n kueuer-system rollout status deployment/kueuer-responder --timeout=180s
echo "Kueuer is installed. Opt a namespace in: kubectl label namespace <ns> kueuer.io/injection=enabled"
