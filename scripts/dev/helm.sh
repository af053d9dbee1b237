#!/usr/bin/env bash
# Builds helm (the Go module helm.sh/helm/v3) once from the Go module proxy
# into .cache/helm/<version>/bin, and prints the binary's path on its last
# line, the way scripts/dev/k8s-binaries.sh caches the control plane. A second
# run finds the binary and returns at once. A failed build exits non-zero
# (the test run fails; nothing is skipped).
#   KUEUER_HELM_VERSION   default v3.19.0
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
version="${KUEUER_HELM_VERSION:-v3.19.0}"
bin="$root/.cache/helm/$version/bin"

if [ -x "$bin/helm" ]; then
  echo "$bin/helm"
  exit 0
fi
command -v go >/dev/null || { echo "go is not installed; it is needed to build helm" >&2; exit 1; }
mkdir -p "$bin"
echo "building helm $version (first run only; a few minutes)" >&2
export GOFLAGS="${GOFLAGS:-} -mod=mod"
# The -X flags of Helm's Makefile: its version (else `helm version` says
# v3.x-dev), and the Kubernetes version `helm template`/`lint` assume without a
# cluster (.Capabilities.KubeVersion; else v1.20), from the client-go it builds with.
helm_mod="$(go mod download -json "helm.sh/helm/v3@$version" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
client_go="$(awk '$1 == "k8s.io/client-go" {print $2; exit}' "$helm_mod")"   # v0.34.0
k8s_minor="$(echo "$client_go" | cut -d. -f2)"
[ -n "$k8s_minor" ] || { echo "no k8s.io/client-go in $helm_mod" >&2; exit 1; }
ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$version -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
for pkg in pkg/chartutil pkg/lint/rules; do
  ldflags="$ldflags -X helm.sh/helm/v3/$pkg.k8sVersionMajor=1 -X helm.sh/helm/v3/$pkg.k8sVersionMinor=$k8s_minor"
done
GOBIN="$bin" go install -trimpath -ldflags "$ldflags" \
  "helm.sh/helm/v3/cmd/helm@$version" >&2
[ -x "$bin/helm" ] || { echo "go install did not produce $bin/helm" >&2; exit 1; }
echo "$bin/helm"
