# shellcheck shell=bash
# Sourced by the scripts that change a cluster (install.sh, uninstall.sh):
# the cluster kubectl points at, in words, so the user sees it before anything changes.

# kube_context KUBECTL: prints `context NAME (cluster NAME, server URL)`, or why there is none.
kube_context() {
  local kubectl="$1" context cluster
  if ! context="$("$kubectl" config current-context 2>/dev/null)" || [ -z "$context" ]; then
    echo "no current kubectl context (KUBECONFIG=${KUBECONFIG:-~/.kube/config}; kubectl config use-context NAME sets one)"
    return
  fi
  cluster="$("$kubectl" config view --minify -o jsonpath='{.contexts[0].context.cluster}, server {.clusters[0].cluster.server}' 2>/dev/null || true)"
  echo "kubectl context $context (cluster ${cluster:-unknown})"
}
