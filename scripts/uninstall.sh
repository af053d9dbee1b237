#!/usr/bin/env bash
# Removes Kueuer from a cluster, in the one safe order:
#   1. while the webhook still runs, give every Service it rewrote back its
#      selector and target ports: the opt-in label becomes "false" (and the
#      deprecated opt-in annotation is dropped) in one update, which the
#      webhook answers by restoring the Service; then the label is removed;
#   2. wait until no Service in any namespace carries kueuer.io/original-service;
#   3. delete Kueuer's objects: `kubectl delete -k DIR` (default: manifests/),
#      then the HPAs, ScaledObjects and EndpointSlices the webhook generated.
# If a Service is not restored in time (the webhook is down or refuses), it
# stops before deleting anything and names the Services left: deleting the
# webhook first would leave them selector-less, pointing at nothing.
#
# Usage: scripts/uninstall.sh [KUSTOMIZE_DIR]
#        scripts/uninstall.sh --restore-only   # steps 1 and 2 (then helm uninstall, and step 3's last deletions)
# Env:   KUBECTL (default kubectl), KUEUER_UNINSTALL_TIMEOUT (seconds, default 120)
set -euo pipefail

restore_only=""
if [ "${1:-}" = "--restore-only" ]; then
  restore_only=1
  shift
fi
dir="${1:-$(dirname "$0")/../manifests}"
kubectl="${KUBECTL:-kubectl}"
timeout="${KUEUER_UNINSTALL_TIMEOUT:-120}"

# namespace/name of every Service the webhook rewrote (it records the original in this annotation).
rewritten() {
  "$kubectl" get services --all-namespaces \
    -o jsonpath='{range .items[*]}{.metadata.namespace}/{.metadata.name} {.metadata.annotations.kueuer\.io/original-service}{"\n"}{end}' |
    awk 'NF > 1 { print $1 }'
}

services="$(rewritten)"
count=$(printf '%s' "$services" | grep -c . || true)
echo "kueuer uninstall: ${count} Service(s) to restore"
for svc in $services; do
  ns="${svc%%/*}"
  name="${svc#*/}"
  # One update: label "false" (still sent to the webhook by its objectSelector) and no opt-in annotation.
  if ! out=$("$kubectl" -n "$ns" patch service "$name" --type merge \
    -p '{"metadata":{"labels":{"kueuer.io/inject":"false"},"annotations":{"kueuer.io/inject":null}}}' 2>&1); then
    echo "kueuer uninstall: cannot restore Service $svc: $out" >&2
  fi
done

deadline=$((SECONDS + timeout))
while :; do
  left="$(rewritten)"
  [ -z "$left" ] && break
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "kueuer uninstall: after ${timeout}s these Services are still pointed at the responder: $(echo $left)" >&2
    echo "kueuer uninstall: nothing was deleted. The webhook restores a Service when its kueuer.io/inject label is removed or set to \"false\";" >&2
    echo "kueuer uninstall: check it runs (kubectl -n kueuer-system get pods; kueuer check), then run this script again." >&2
    exit 1
  fi
  sleep 1
done
for svc in $services; do
  "$kubectl" -n "${svc%%/*}" label service "${svc#*/}" kueuer.io/inject- >/dev/null
  echo "kueuer uninstall: restored Service $svc"
done

generated_hpas=(horizontalpodautoscalers.autoscaling --all-namespaces -l app.kubernetes.io/managed-by=kueuer --ignore-not-found)
mirrored_slices=(endpointslices.discovery.k8s.io --all-namespaces -l endpointslice.kubernetes.io/managed-by=kueuer.io --ignore-not-found)
# Every Service routes by its selector again, so the EndpointSlices the webhook mirrored for them
# (the responder pods) go now: left until Kueuer is removed, kube-proxy would keep sending part of
# each Service's connections to responder pods that no longer route it, or are gone. The webhook
# deletes them itself when it sees a Service restored, unless it is removed before it gets to.
"$kubectl" delete "${mirrored_slices[@]}" >/dev/null
echo "kueuer uninstall: deleted the EndpointSlices mirrored for queued Services"
if [ -n "$restore_only" ]; then
  echo "kueuer uninstall: every Service is restored. Now remove Kueuer (e.g. helm uninstall kueuer --namespace kueuer-system), then:"
  echo "  kubectl delete ${generated_hpas[*]}"
  echo "  kubectl delete scaledobjects.keda.sh --all-namespaces -l app.kubernetes.io/managed-by=kueuer   # keda mode only"
  exit 0
fi

echo "kueuer uninstall: deleting Kueuer's objects (kubectl delete -k $dir)"
"$kubectl" delete -k "$dir" --ignore-not-found --wait=true
# What the webhook generated, now that it no longer runs to re-create it.
"$kubectl" delete "${generated_hpas[@]}"
if "$kubectl" api-resources --api-group=keda.sh -o name 2>/dev/null | grep -qx 'scaledobjects.keda.sh'; then
  "$kubectl" delete scaledobjects.keda.sh --all-namespaces -l app.kubernetes.io/managed-by=kueuer --ignore-not-found
fi
"$kubectl" delete "${mirrored_slices[@]}"
echo "kueuer uninstall: done. Pods injected earlier keep their sidecar until they are re-created (kubectl rollout restart)."
