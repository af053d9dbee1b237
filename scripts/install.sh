#!/usr/bin/env bash
# Installs Kueuer on the cluster kubectl points at, without cert-manager:
#   1. a CA and the webhook's serving certificate (scripts/gen-certs.sh),
#      stored as the Secret kueuer-system/kueuer-webhook-tls;
#   2. the manifests (base or an overlay) with the CA as caBundle of the
#      MutatingWebhookConfiguration and the external metrics APIService;
#   3. waits until the webhook and responder Deployments are ready.
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

if [ ! -f "$certs/tls.crt" ]; then
  bash "$root/scripts/gen-certs.sh" "$certs" >/dev/null
fi
ca_bundle="$(base64 < "$certs/ca.crt" | tr -d '\n')"

kubectl apply -f "$root/manifests/base/namespace.yaml"
kubectl -n kueuer-system create secret generic kueuer-webhook-tls \
  --from-file=tls.crt="$certs/tls.crt" --from-file=tls.key="$certs/tls.key" --from-file=ca.crt="$certs/ca.crt" \
  --dry-run=client -o yaml | kubectl apply -f -

# The only empty caBundle fields are the webhook configuration's and the APIService's.
kubectl kustomize "$dir" | sed "s|caBundle: \"\"|caBundle: $ca_bundle|" | kubectl apply -f -

kubectl -n kueuer-system rollout status deployment/kueuer-webhook --timeout=180s
kubectl -n kueuer-system rollout status deployment/kueuer-responder --timeout=180s
echo "Kueuer is installed. Opt a namespace in: kubectl label namespace <ns> kueuer.io/injection=enabled"
