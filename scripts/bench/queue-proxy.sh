#!/usr/bin/env bash
# Builds Knative Serving's queue-proxy (the per-pod proxy Kueuer is compared
# with in `npm run bench`) from the Go module proxy, pinned, into
# .cache/queue-proxy/<version>/bin/queue, and prints the binary's path on its
# last line. A second run finds the binary and returns at once.
#   KUEUER_QUEUE_PROXY_VERSION   default v0.50.0 (v0.51.0 needs a knative.dev/pkg
#                                pseudo-version the module proxy refuses)
set -euo pipefail

version="${KUEUER_QUEUE_PROXY_VERSION:-v0.50.0}"
queue="$(cd "$(dirname "$0")/../.." && pwd)/.cache/queue-proxy/$version/bin/queue"
if [ ! -x "$queue" ]; then
  command -v go >/dev/null || { echo "go is not installed; it is needed to build Knative's queue-proxy" >&2; exit 1; }
  echo "building knative.dev/serving/cmd/queue@$version (first run only, about a minute)" >&2
  GOBIN="$(dirname "$queue")" CGO_ENABLED=0 go install -trimpath "knative.dev/serving/cmd/queue@$version" >&2
  [ -x "$queue" ] || { echo "go install did not produce $queue" >&2; exit 1; }
fi
echo "$queue"
