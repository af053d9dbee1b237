#!/usr/bin/env bash
# Builds KEDA (github.com/kedacore/keda/v2: the operator and its metrics
# apiserver) from the Go module proxy, pinned, and its two images, so the
# real-node tests can run Kueuer's keda autoscaling mode against the real
# thing (test/node/install-paths.test.ts). No image registry is needed:
#   1. the module's source is copied from the module cache to
#      .cache/keda/<version>/src (KEDA's go.mod has replace directives, so
#      `go install pkg@version` refuses it; it is built as the main module);
#   2. `go build ./cmd/operator ./cmd/adapter` (static, CGO_ENABLED=0) into
#      .cache/keda/<version>/bin/{keda,keda-adapter};
#   3. two images FROM scratch, each the binary at the path KEDA's own
#      manifests run (/keda, /keda-adapter), user 65532 (the manifests ask
#      runAsNonRoot), saved as docker-archives that
#      `ctr -n k8s.io images import` names localhost/keda:<version> and
#      localhost/keda-metrics-apiserver:<version>.
# KEDA's kustomize tree (config/minimal: CRDs, RBAC, operator, metrics
# apiserver and its APIService, no admission webhooks) is in the copied source.
# A second run finds everything and returns at once.
#
#   KUEUER_KEDA_VERSION   default v2.21.0 (supports Kubernetes 1.32-1.34)
#
# Last line of stdout (parsed by test/helpers/keda.ts):
#   {"version":"v2.21.0","config":"/abs/src/config",
#    "operator":{"archive":"/abs/keda.tar","ref":"localhost/keda:v2.21.0"},
#    "adapter":{"archive":"/abs/keda-metrics-apiserver.tar","ref":"localhost/keda-metrics-apiserver:v2.21.0"}}
# Needs go, root and buildah (scripts/dev/images.sh installs it).
#
# Measured here (2 vCPUs, 2026-11-28): a cold build (module downloads and
# compile of both binaries) takes several minutes; warm, under a second.
set -euo pipefail

version="${KUEUER_KEDA_VERSION:-v2.21.0}"
[[ "$version" =~ ^v[0-9]+\.[0-9]+\.[0-9]+$ ]] || { echo "keda: KUEUER_KEDA_VERSION must look like v2.21.0, got '$version'" >&2; exit 1; }
root="$(cd "$(dirname "$0")/../.." && pwd)"
cache="$root/.cache/keda/$version"
src="$cache/src"
bin="$cache/bin"
operator_ref="localhost/keda:$version"
adapter_ref="localhost/keda-metrics-apiserver:$version"
operator_archive="$cache/keda.tar"
adapter_archive="$cache/keda-metrics-apiserver.tar"
log() { echo "keda: $*" >&2; }
mkdir -p "$cache"
# One build at a time (two test files may ask at once); the second waits, then finds it.
exec 9>"$cache/.lock"
flock 9

print_result() {
  printf '{"version":"%s","config":"%s","operator":{"archive":"%s","ref":"%s"},"adapter":{"archive":"%s","ref":"%s"}}\n' \
    "$version" "$src/config" "$operator_archive" "$operator_ref" "$adapter_archive" "$adapter_ref"
}
if [ -s "$operator_archive" ] && [ -s "$adapter_archive" ] && [ -f "$src/go.mod" ]; then
  print_result
  exit 0
fi

# --- 1. the source
if [ ! -f "$src/go.mod" ]; then
  command -v go >/dev/null || { log "go is not installed; it is needed to build KEDA"; exit 1; }
  log "downloading github.com/kedacore/keda/v2@$version from the Go module proxy (first run only)"
  module_dir="$(GOFLAGS=-mod=mod go mod download -json "github.com/kedacore/keda/v2@$version" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')"
  [ -f "$module_dir/go.mod" ] || { log "go mod download gave no module directory for github.com/kedacore/keda/v2@$version"; exit 1; }
  rm -rf "$src.tmp"
  cp -r "$module_dir" "$src.tmp"
  chmod -R u+w "$src.tmp"
  mv "$src.tmp" "$src"
fi

# --- 2. the binaries
if [ ! -x "$bin/keda" ] || [ ! -x "$bin/keda-adapter" ]; then
  start=$SECONDS
  log "building KEDA $version's operator and metrics apiserver (first run only, several minutes)"
  rm -rf "$bin.tmp"
  mkdir -p "$bin.tmp"
  (cd "$src" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w -X github.com/kedacore/keda/v2/version.Version=${version#v}" -o "$bin.tmp/" ./cmd/operator ./cmd/adapter) >&2
  mv "$bin.tmp/operator" "$bin.tmp/keda"
  mv "$bin.tmp/adapter" "$bin.tmp/keda-adapter"
  rm -rf "$bin"
  mv "$bin.tmp" "$bin"
  log "built in $((SECONDS - start)) s"
fi

# --- 3. the images
[ "$(id -u)" = 0 ] || { log "building images needs root (buildah)"; exit 1; }
command -v buildah >/dev/null || {
  log "installing buildah from Debian (first run only)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends buildah >&2 ||
    { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends buildah >&2; }
}
# vfs: two single-file images need no layer sharing, and vfs works everywhere.
B=(buildah --root "$cache/storage" --runroot "$cache/run" --storage-driver vfs)
"${B[@]}" rm --all >/dev/null 2>&1 || true

# build_image BINARY REF ARCHIVE: BINARY as /BINARY's name in an image FROM scratch.
build_image() {
  local binary="$1" ref="$2" archive="$3" name c
  name="$(basename "$binary")"
  c="$("${B[@]}" from scratch)"
  "${B[@]}" copy --chmod 0755 "$c" "$binary" "/$name" >&2
  "${B[@]}" config --entrypoint "[\"/$name\"]" --cmd '' --user 65532:65532 "$c"
  "${B[@]}" commit --quiet --rm "$c" "$ref" >&2
  rm -f "$archive.tmp"
  "${B[@]}" push --quiet "$ref" "docker-archive:$archive.tmp:$ref" >&2
  mv "$archive.tmp" "$archive"
}
[ -s "$operator_archive" ] || build_image "$bin/keda" "$operator_ref" "$operator_archive"
[ -s "$adapter_archive" ] || build_image "$bin/keda-adapter" "$adapter_ref" "$adapter_archive"
print_result
