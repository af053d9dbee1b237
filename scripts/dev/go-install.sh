#!/usr/bin/env bash
# Builds one Go command once, static (CGO_ENABLED=0), from the Go module proxy
# into a cache path, and prints that path on its last line; a second run finds
# the binary and returns at once. A failed build exits non-zero (the test run
# fails; nothing is skipped). The tools of the tests and the scenario runner
# call it (scripts/dev/vegeta.sh, scripts/dev/third-party-apps.sh,
# scripts/scenario/metrics-server.sh):
#
#   scripts/dev/go-install.sh PACKAGE@VERSION BINARY_PATH WHAT_FOR
#     e.g. github.com/tsenart/vegeta/v12@v12.13.0 .cache/vegeta/v12.13.0/vegeta "the scenario runner"
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: scripts/dev/go-install.sh PACKAGE@VERSION BINARY_PATH WHAT_FOR" >&2; exit 2; }
package="$1"
bin="$2"
name="$(basename "$bin")"
if [ -x "$bin" ]; then
  echo "$bin"
  exit 0
fi
go="$(command -v go || true)"
if [ -z "$go" ] && [ -x /usr/local/go/bin/go ]; then go=/usr/local/go/bin/go; fi
[ -n "$go" ] || { echo "go is not installed; it is needed to build $name for $3" >&2; exit 1; }

echo "building $package (first run only)" >&2
out="$(dirname "$bin")"
mkdir -p "$out"
tmp="$(mktemp -d "$out/.build.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
# GOFLAGS from the environment could force -mod=vendor or similar; this is a
# plain module install, with the Go toolchain installed here (no download).
GOFLAGS="" GOTOOLCHAIN=local CGO_ENABLED=0 GOBIN="$tmp" "$go" install -trimpath -ldflags='-s -w' "$package" >&2
# The command's name: the package path's last element, or the one before a major version (…/vegeta/v12).
path="${package%@*}"
command_name="$(basename "$path")"
if [[ "$command_name" =~ ^v[0-9]+$ ]]; then command_name="$(basename "$(dirname "$path")")"; fi
mv "$tmp/$command_name" "$bin"
echo "$bin"
