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
#   KUEUER_INSTALL_WAIT=false applies and returns without waiting for the rollout.
# The webhook serves these certificates (KUEUER_CERT_SOURCE=secret); without
# this script, `kubectl apply -k manifests/` alone makes the webhook issue and
# rotate its own (KUEUER_CERT_SOURCE=self).
# Needs kubectl and openssl. The broker Secret is yours to create (see
# manifests/base/backend-secret.example.yaml), or use the rabbitmq or kafka
# component. A broker Secret you created is never replaced by a CHANGE-ME
# placeholder (the rabbitmq component's, or backend-secret.example.yaml as it
# is): that Secret is left out of the apply.
usage() {
  cat <<'USAGE'
Usage: scripts/install.sh [KUSTOMIZE_DIR]   # default: manifests (the base); or an overlay, or your kustomization
Installs Kueuer on the cluster of the current kubectl context (printed first), with
openssl-made certificates. Options: --help (-h) this text.
Env: KUEUER_CERT_DIR (keep the certificates there), KUEUER_INSTALL_WAIT=false (do not wait
     for the rollout), KUEUER_KEDA_NAMESPACE (keda mode; default keda), KUBECONFIG
USAGE
}
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dir=""
while [ $# -gt 0 ]; do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --) shift; [ $# -le 1 ] || { echo "kueuer install: one KUSTOMIZE_DIR only" >&2; exit 2; }; dir="${1:-}"; break ;;
    -*) echo "kueuer install: unknown flag $1 (see scripts/install.sh --help)" >&2; exit 2 ;;
    *) [ -z "$dir" ] || { echo "kueuer install: one KUSTOMIZE_DIR only, got $dir and $1" >&2; exit 2; }; dir="$1" ;;
  esac
  shift
done
dir="${dir:-$root/manifests}"
[ -d "$dir" ] || { echo "kueuer install: $dir is not a directory (a kustomization: manifests/, an overlay or yours)" >&2; exit 2; }
# The kustomization applied, and the certificates unless KUEUER_CERT_DIR keeps them:
# the CA's private key must not outlive the install in /tmp.
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
certs="${KUEUER_CERT_DIR:-$work}"
command -v kubectl >/dev/null || { echo "kubectl is needed" >&2; exit 1; }
# shellcheck source=scripts/lib/kube-context.sh
. "$root/scripts/lib/kube-context.sh"
# The names and rules shared with the webhook, generated from its TypeScript.
# shellcheck source=scripts/lib/kueuer-rules.sh
. "$root/scripts/lib/kueuer-rules.sh"
echo "kueuer install: installing on $(kube_context kubectl)"

kubectl kustomize "$dir" >"$work/rendered.yaml"
# kubectl reads the rendered objects: go-template $1, printed for each (offline: --local
# applies the empty patch to the file only).
rendered() { kubectl patch --local -f "$work/rendered.yaml" --type merge -p '{}' -o "go-template=$1"; }
# Template $3 printed for the rendered object of kind $1 named $2; nothing when there is none.
rendered_object() { rendered "{{if and (eq .kind \"$1\") (eq .metadata.name \"$2\")}}$3{{end}}"; }

# Only one external.metrics.k8s.io APIService can exist per cluster. When this
# install would apply Kueuer's and another metrics server (KEDA,
# prometheus-adapter, Datadog) owns it, refuse, as the webhook itself does
# (webhook/autoscaling/metrics-owner.ts, same message).
if [ -n "$(rendered_object APIService "$KUEUER_APISERVICE" yes)" ]; then
  owner="$(kubectl get apiservice "$KUEUER_APISERVICE" -o jsonpath='{.spec.service.namespace}/{.spec.service.name}' 2>/dev/null || true)"
  if [ -n "$owner" ] && [ "$owner" != "$KUEUER_METRICS_SERVICE" ]; then
    kueuer_metrics_owner_refusal "$owner" >&2
    exit 1
  fi
fi

# A second run (an upgrade, README) keeps the certificates the webhook serves:
# a new CA in the caBundle before the pods mount the new Secret would make the
# apiserver refuse every opted-in pod (x509: unknown authority) meanwhile.
# They are reused while valid for 30 more days and naming the webhook Service.
reuse_installed_certs() {
  local field
  for field in tls.crt tls.key ca.crt; do
    kubectl -n "$KUEUER_NAMESPACE" get secret "$KUEUER_CERT_SECRET" -o "jsonpath={.data.${field//./\\.}}" 2>/dev/null | base64 -d > "$certs/$field.installed" 2>/dev/null || return 1
    [ -s "$certs/$field.installed" ] || return 1
  done
  openssl x509 -in "$certs/tls.crt.installed" -noout -checkend 2592000 >/dev/null 2>&1 || return 1
  openssl x509 -in "$certs/tls.crt.installed" -noout -ext subjectAltName 2>/dev/null | grep -q "DNS:$KUEUER_WEBHOOK_DNS" || return 1
  for field in tls.crt tls.key ca.crt; do mv "$certs/$field.installed" "$certs/$field"; done
  echo "Reusing the webhook certificate of the Secret $KUEUER_NAMESPACE/$KUEUER_CERT_SECRET (valid for 30 days or more)" >&2
}
if [ ! -f "$certs/tls.crt" ] && ! reuse_installed_certs; then
  rm -f "$certs"/*.installed
  bash "$root/scripts/gen-certs.sh" "$certs" >/dev/null
fi
ca_bundle="$(base64 < "$certs/ca.crt" | tr -d '\n')"

kubectl apply -f "$root/manifests/base/namespace.yaml"
kubectl -n "$KUEUER_NAMESPACE" create secret generic "$KUEUER_CERT_SECRET" \
  --from-file=tls.crt="$certs/tls.crt" --from-file=tls.key="$certs/tls.key" --from-file=ca.crt="$certs/ca.crt" \
  --dry-run=client -o yaml | kubectl apply -f -

# keda mode: KEDA's metrics-api scaler verifies the webhook's certificate with
# this CA (ClusterTriggerAuthentication kueuer-backlog, in KEDA's namespace).
# Its authMode tls also wants a client certificate: a throwaway one, never sent.
if [ -n "$(rendered '{{if eq .kind "ClusterTriggerAuthentication"}}yes{{end}}')" ]; then
  keda_ns="${KUEUER_KEDA_NAMESPACE:-keda}"
  if [ ! -f "$certs/keda-client.crt" ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 -subj /CN=keda-kueuer-backlog \
      -keyout "$certs/keda-client.key" -out "$certs/keda-client.crt" 2>/dev/null
  fi
  kubectl -n "$keda_ns" create secret generic "$KUEUER_KEDA_SECRET" \
    --from-file=ca.crt="$certs/ca.crt" --from-file=tls.crt="$certs/keda-client.crt" --from-file=tls.key="$certs/keda-client.key" \
    --dry-run=client -o yaml | kubectl apply -f -
fi

# Step 1 of README created the broker Secret; the rabbitmq component's literal
# is a placeholder, and applying it would replace the real credentials.
broker_url="$(rendered_object Secret kueuer-backend '{{if eq .metadata.namespace "kueuer-system"}}
  {{- with .stringData.KUEUER_BACKEND}}{{.}}{{else}}{{with .data.KUEUER_BACKEND}}{{base64decode .}}{{end}}{{end}}{{end}}')"
keep_secret=""
if [[ "$broker_url" == *CHANGE-ME* ]]; then
  if kubectl -n kueuer-system get secret kueuer-backend >/dev/null 2>&1; then
    echo "Keeping the existing Secret kueuer-system/kueuer-backend: the rendered one holds the CHANGE-ME placeholder" >&2
    keep_secret=1
  else
    echo "Warning: the Secret kueuer-system/kueuer-backend holds the CHANGE-ME placeholder: replace it with your broker's URL (README, step 1)" >&2
  fi
fi

# What is applied: the rendered objects with kustomize's patches. json_patch KIND NAME OP PATH VALUE.
json_patch() { printf -- "- {target: {kind: %s, name: %s}, patch: '[{\"op\": \"%s\", \"path\": \"%s\", \"value\": \"%s\"}]'}\n" "$@"; }
{
  echo "resources: [rendered.yaml]"
  echo "patches:"
  [ -z "$keep_secret" ] || echo "- patch: '{\$patch: delete, apiVersion: v1, kind: Secret, metadata: {name: kueuer-backend, namespace: kueuer-system}}'"
  # These certificates are served as they are (KUEUER_CERT_SOURCE=secret), and their CA fills
  # the empty caBundles of the webhook configuration and of the APIService.
  # shellcheck disable=SC2016 # a go-template's variables
  for i in $(rendered_object MutatingWebhookConfiguration "$KUEUER_WEBHOOK_CONFIGURATION" '{{range $i, $w := .webhooks}}{{if not $w.clientConfig.caBundle}}{{$i}} {{end}}{{end}}'); do
    json_patch MutatingWebhookConfiguration "$KUEUER_WEBHOOK_CONFIGURATION" add "/webhooks/$i/clientConfig/caBundle" "$ca_bundle"
  done
  if [ "$(rendered_object APIService "$KUEUER_APISERVICE" '{{if not .spec.caBundle}}empty{{end}}')" = empty ]; then
    json_patch APIService "$KUEUER_APISERVICE" add /spec/caBundle "$ca_bundle"
  fi
  if [ "$(rendered_object ConfigMap kueuer-config '{{.data.KUEUER_CERT_SOURCE}}')" = self ]; then
    json_patch ConfigMap kueuer-config replace /data/KUEUER_CERT_SOURCE secret
  fi
} >"$work/kustomization.yaml"
kubectl apply -k "$work"

if [ "${KUEUER_INSTALL_WAIT:-true}" != "false" ]; then
  kubectl -n "$KUEUER_NAMESPACE" rollout status deployment/kueuer-webhook --timeout=180s
  kubectl -n "$KUEUER_NAMESPACE" rollout status deployment/kueuer-responder --timeout=180s
fi
echo "Kueuer is installed. Opt a namespace in: kubectl label namespace <ns> $KUEUER_NAMESPACE_OPT_IN"
