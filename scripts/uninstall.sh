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
usage() {
  cat <<'USAGE'
Usage: scripts/uninstall.sh [--yes] [KUSTOMIZE_DIR]   # all three steps; KUSTOMIZE_DIR: what you installed (default: manifests/)
       scripts/uninstall.sh [--yes] --restore-only    # steps 1 and 2 (then helm uninstall, and step 3's last deletions)
It first prints the kubectl context (and cluster) it will act on and asks for
confirmation; without a terminal to ask on it changes nothing unless --yes is given.
Options: --yes (-y) do not ask; --help (-h) this text.
Env:     KUBECTL (default kubectl), KUBECONFIG, KUEUER_UNINSTALL_TIMEOUT (seconds, default 120)
USAGE
}
set -euo pipefail

restore_only=""
yes=""
dir=""
while [ $# -gt 0 ]; do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    -y | --yes) yes=1 ;;
    --restore-only) restore_only=1 ;;
    --) shift; break ;;
    -*) echo "kueuer uninstall: unknown flag $1 (see scripts/uninstall.sh --help)" >&2; exit 2 ;;
    *)
      [ -z "$dir" ] || { echo "kueuer uninstall: one KUSTOMIZE_DIR only, got $dir and $1" >&2; exit 2; }
      dir="$1" ;;
  esac
  shift
done
[ $# -le 1 ] || { echo "kueuer uninstall: one KUSTOMIZE_DIR only" >&2; exit 2; }
if [ $# -eq 1 ]; then
  [ -z "$dir" ] || { echo "kueuer uninstall: one KUSTOMIZE_DIR only, got $dir and $1" >&2; exit 2; }
  dir="$1"
fi
if [ -n "$restore_only" ] && [ -n "$dir" ]; then
  echo "kueuer uninstall: --restore-only deletes nothing, so it takes no KUSTOMIZE_DIR" >&2
  exit 2
fi
dir="${dir:-$(dirname "$0")/../manifests}"
if [ -z "$restore_only" ] && [ ! -d "$dir" ]; then
  echo "kueuer uninstall: $dir is not a directory (a kustomization: what you installed)" >&2
  exit 2
fi
kubectl="${KUBECTL:-kubectl}"
timeout="${KUEUER_UNINSTALL_TIMEOUT:-120}"
# shellcheck source=scripts/lib/kube-context.sh
. "$(dirname "$0")/lib/kube-context.sh"
# The names and rules shared with the webhook, generated from its TypeScript.
# shellcheck source=scripts/lib/kueuer-rules.sh
. "$(dirname "$0")/lib/kueuer-rules.sh"

# namespace/name of every Service the webhook rewrote (it records the original in this annotation).
rewritten() {
  "${k[@]}" get services --all-namespaces \
    -o jsonpath="{range .items[?(@.metadata.annotations.${KUEUER_ORIGINAL_SERVICE//./\\.})]}{.metadata.namespace}/{.metadata.name}{\"\\n\"}{end}"
}

# The context is read once: it is the one shown, and every later call names it, so a context switched
# meanwhile (another terminal, while the question waits) cannot turn the confirmed uninstall on another cluster.
context="$("$kubectl" config current-context 2>/dev/null || true)"
echo "kueuer uninstall: acting on $(kube_context "$kubectl" "$context")"
k=("$kubectl")
if [ -n "$context" ]; then k+=(--context "$context"); fi
services="$(rewritten)"
count=$(printf '%s' "$services" | grep -c . || true)
echo "kueuer uninstall: ${count} Service(s) to restore"
if [ -n "$restore_only" ]; then plan="restore them (Kueuer stays installed)"; else plan="restore them, then delete Kueuer (kubectl delete -k $dir)"; fi
if [ -z "$yes" ]; then
  if [ ! -t 0 ]; then
    echo "kueuer uninstall: nothing changed: no terminal to confirm on; run it with --yes to $plan without asking" >&2
    exit 2
  fi
  read -r -p "kueuer uninstall: $plan? [y/N] " answer || answer=""
  case "$answer" in
    y | Y | yes | YES) ;;
    *) echo "kueuer uninstall: nothing changed" >&2; exit 1 ;;
  esac
fi
for svc in $services; do
  ns="${svc%%/*}"
  name="${svc#*/}"
  # One update: label "false" (still sent to the webhook by its objectSelector) and no opt-in annotation.
  if ! out=$("${k[@]}" -n "$ns" patch service "$name" --type merge \
    -p "{\"metadata\":{\"labels\":{\"$KUEUER_INJECT\":\"false\"},\"annotations\":{\"$KUEUER_INJECT\":null}}}" 2>&1); then
    echo "kueuer uninstall: cannot restore Service $svc: $out" >&2
  fi
done

deadline=$((SECONDS + timeout))
while :; do
  left="$(rewritten)"
  [ -z "$left" ] && break
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "kueuer uninstall: after ${timeout}s these Services are still pointed at the responder: ${left//$'\n'/ }" >&2
    echo "kueuer uninstall: nothing was deleted. The webhook restores a Service when its $KUEUER_INJECT label is removed or set to \"false\";" >&2
    echo "kueuer uninstall: check it runs (kubectl -n kueuer-system get pods; kueuer check), then run this script again." >&2
    exit 1
  fi
  sleep 1
done
for svc in $services; do
  "${k[@]}" -n "${svc%%/*}" label service "${svc#*/}" "$KUEUER_INJECT-" >/dev/null
  echo "kueuer uninstall: restored Service $svc"
done

generated_hpas=(horizontalpodautoscalers.autoscaling --all-namespaces -l "$KUEUER_GENERATED_SELECTOR" --ignore-not-found)
mirrored_slices=(endpointslices.discovery.k8s.io --all-namespaces -l "$KUEUER_MIRRORED_SELECTOR" --ignore-not-found)
# Every Service routes by its selector again, so the EndpointSlices the webhook mirrored for them
# (the responder pods) go now: left until Kueuer is removed, kube-proxy would keep sending part of
# each Service's connections to responder pods that no longer route it, or are gone. The webhook
# deletes them itself when it sees a Service restored, unless it is removed before it gets to.
"${k[@]}" delete "${mirrored_slices[@]}" >/dev/null
echo "kueuer uninstall: deleted the EndpointSlices mirrored for queued Services"
if [ -n "$restore_only" ]; then
  echo "kueuer uninstall: every Service is restored. Now remove Kueuer (e.g. helm uninstall kueuer --namespace kueuer-system), then:"
  echo "  kubectl delete ${generated_hpas[*]}"
  echo "  kubectl delete scaledobjects.keda.sh --all-namespaces -l $KUEUER_GENERATED_SELECTOR   # keda mode only"
  exit 0
fi

echo "kueuer uninstall: deleting Kueuer's objects (kubectl delete -k $dir)"
"${k[@]}" delete -k "$dir" --ignore-not-found --wait=true
# What the webhook generated, now that it no longer runs to re-create it.
"${k[@]}" delete "${generated_hpas[@]}"
if "${k[@]}" api-resources --api-group=keda.sh -o name 2>/dev/null | grep -qx 'scaledobjects.keda.sh'; then
  "${k[@]}" delete scaledobjects.keda.sh --all-namespaces -l "$KUEUER_GENERATED_SELECTOR" --ignore-not-found
fi
"${k[@]}" delete "${mirrored_slices[@]}"
echo "kueuer uninstall: done. Pods injected earlier keep their sidecar until they are re-created (kubectl rollout restart)."
