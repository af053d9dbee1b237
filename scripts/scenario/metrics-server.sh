#!/usr/bin/env bash
# Builds metrics-server (sigs.k8s.io/metrics-server, the resource-metrics API a
# CPU HorizontalPodAutoscaler reads) once from the Go module proxy, static, and
# prints on its last line the path of the binary (.cache/metrics-server/).
# The scenario runner (scripts/scenario/) puts it in an image FROM scratch for
# run (a), "without Kueuer": a Deployment with a CPU HPA, what users run today.
# KUEUER_METRICS_SERVER_VERSION overrides the version (default v0.8.1).
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
version="${KUEUER_METRICS_SERVER_VERSION:-v0.8.1}"
out="$root/.cache/metrics-server/$version"
bin="$out/metrics-server"

if [ -x "$bin" ]; then
  echo "$bin"
  exit 0
fi
go="$(command -v go || true)"
if [ -z "$go" ] && [ -x /usr/local/go/bin/go ]; then go=/usr/local/go/bin/go; fi
if [ -z "$go" ]; then
  echo "go is not installed; it is needed to build metrics-server for the scenario runner" >&2
  exit 1
fi

echo "building metrics-server $version (first run only; minutes cold)" >&2
mkdir -p "$out"
tmp="$(mktemp -d "$out/.build.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
GOFLAGS="" GOTOOLCHAIN=local CGO_ENABLED=0 GOBIN="$tmp" "$go" install -trimpath -ldflags='-s -w' \
  "sigs.k8s.io/metrics-server/cmd/metrics-server@$version" >&2
mv "$tmp/metrics-server" "$bin"
echo "$bin"
