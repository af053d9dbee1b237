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
exec bash "$root/scripts/dev/go-install.sh" "sigs.k8s.io/metrics-server/cmd/metrics-server@$version" \
  "$root/.cache/metrics-server/$version/metrics-server" "the scenario runner"
