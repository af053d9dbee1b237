#!/usr/bin/env bash
# Builds the third-party HTTP apps the foreign-peer suites (test/foreign) put
# behind Kueuer, into .cache/third-party/, and prints on its last line the
# path of the go-httpbin binary:
#   go-httpbin   (Go module github.com/mccutchen/go-httpbin/v2, cmd/go-httpbin)
# built static (CGO_ENABLED=0) with `go install` from the Go module proxy.
# Only this build touches the network; the tests then run the binary on
# loopback. A second run finds the binary and returns at once. A failed build
# exits non-zero, which fails the test run (nothing is skipped).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
httpbin_version="${KUEUER_GO_HTTPBIN_VERSION:-v2.26.0}"
out="$root/.cache/third-party/go-httpbin-$httpbin_version"
bin="$out/go-httpbin"

if [ -x "$bin" ]; then
  echo "$bin"
  exit 0
fi
go="$(command -v go || true)"
[ -n "$go" ] || { [ -x /usr/local/go/bin/go ] && go=/usr/local/go/bin/go; }
[ -n "$go" ] || { echo "go is not installed; it is needed to build go-httpbin for test/foreign" >&2; exit 1; }

echo "building go-httpbin $httpbin_version (first run only)" >&2
mkdir -p "$out"
tmp="$(mktemp -d "$out/.build.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
# GOFLAGS from the environment could force -mod=vendor or similar; this is a plain module install.
GOFLAGS="" CGO_ENABLED=0 GOBIN="$tmp" "$go" install -trimpath -ldflags='-s -w' \
  "github.com/mccutchen/go-httpbin/v2/cmd/go-httpbin@$httpbin_version" >&2
mv "$tmp/go-httpbin" "$bin"
echo "$bin"
