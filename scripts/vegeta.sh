#!/usr/bin/env bash
# Builds vegeta (github.com/tsenart/vegeta/v12, the open-loop HTTP load
# generator the scenario runner drives: scripts/scenario/) once from the Go
# module proxy into .cache/vegeta/, like scripts/third-party-apps.sh builds
# go-httpbin, and prints on its last line the path of the binary. A second run
# finds it and returns at once. A failed build exits non-zero.
# KUEUER_VEGETA_VERSION overrides the version (default v12.13.0).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
version="${KUEUER_VEGETA_VERSION:-v12.13.0}"
out="$root/.cache/vegeta/$version"
bin="$out/vegeta"

if [ -x "$bin" ]; then
  echo "$bin"
  exit 0
fi
go="$(command -v go || true)"
if [ -z "$go" ] && [ -x /usr/local/go/bin/go ]; then go=/usr/local/go/bin/go; fi
if [ -z "$go" ]; then
  echo "go is not installed; it is needed to build vegeta for the scenario runner" >&2
  exit 1
fi

echo "building vegeta $version (first run only)" >&2
mkdir -p "$out"
tmp="$(mktemp -d "$out/.build.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
# GOFLAGS from the environment could force -mod=vendor or similar; this is a plain module install.
GOFLAGS="" CGO_ENABLED=0 GOBIN="$tmp" "$go" install -trimpath -ldflags='-s -w' \
  "github.com/tsenart/vegeta/v12@$version" >&2
mv "$tmp/vegeta" "$bin"
echo "$bin"
