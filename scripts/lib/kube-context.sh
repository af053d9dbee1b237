# shellcheck shell=bash
# Sourced by the scripts that change a cluster (install.sh, uninstall.sh):
# the cluster kubectl points at, in words, so the user sees it before anything changes.

# kube_context KUBECTL [CONTEXT]: prints `context NAME (cluster NAME, server URL)` of CONTEXT (default:
# the current one), or why there is none. A caller that pins CONTEXT shows exactly what it acts on.
kube_context() {
  local kubectl="$1" context="${2:-}" cluster
  if [ -z "$context" ] && { ! context="$("$kubectl" config current-context 2>/dev/null)" || [ -z "$context" ]; }; then
    echo "no current kubectl context (KUBECONFIG=${KUBECONFIG:-~/.kube/config}; kubectl config use-context NAME sets one)"
    return
  fi
  cluster="$("$kubectl" config view --minify --context "$context" -o jsonpath='{.contexts[0].context.cluster}, server {.clusters[0].cluster.server}' 2>/dev/null || true)"
  echo "kubectl context $context (cluster ${cluster:-unknown})"
}
