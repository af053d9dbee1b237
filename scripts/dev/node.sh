#!/usr/bin/env bash
# Prepares what the real single-node cluster of the tests (test/helpers/node.ts)
# needs on this machine, and prints the node cache directory on its last line:
#   <dir>/bin/crictl            crictl, built from the Go module proxy
#   <dir>/images/pause.tar      the sandbox image kueuer.local/pause:1 (OCI archive)
#   <dir>/images/busybox.tar    kueuer.local/busybox:1, Debian's busybox-static (OCI archive)
# and installs the Debian packages the node runs on when they are missing:
# containerd, runc, containernetworking-plugins (CNI bridge, host-local,
# loopback), iptables, conntrack, busybox-static. Needs root.
#
# No image registry is reachable, so the images are OCI archives assembled here
# (a layer tar, its config, a manifest and an index, each named by its sha256)
# and imported with `ctr -n k8s.io images import`. A second run finds
# everything in .cache/node and returns at once.
#
#   scripts/dev/node.sh            packages + crictl + images
#   scripts/dev/node.sh packages   only the Debian packages
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
crictl_version="${KUEUER_CRICTL_VERSION:-v1.34.0}"
# The images are rebuilt when the sandbox program or this script changes.
images_key="$(cat "$root/scripts/dev/pause/main.go" "$0" | sha256sum | cut -c1-12)"
out="$root/.cache/node"
images="$out/images/$images_key"

packages=(containerd runc containernetworking-plugins iptables conntrack busybox-static)

install_packages() {
  local missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" = 0 ] || { echo "the real node needs root to install: ${missing[*]}" >&2; exit 1; }
  echo "installing ${missing[*]} (first run only)" >&2
  export DEBIAN_FRONTEND=noninteractive
  # Another apt run may hold the lock (other builds on this machine): wait for it.
  local apt=(apt-get -o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confold)
  "${apt[@]}" install -y --no-install-recommends "${missing[@]}" >&2 ||
    { "${apt[@]}" update >&2 && "${apt[@]}" install -y --no-install-recommends "${missing[@]}" >&2; }
  # Debian starts the packaged containerd service where an init system runs; the harness runs its own.
  if command -v systemctl >/dev/null && systemctl is-active --quiet containerd 2>/dev/null; then
    systemctl disable --now containerd >&2 || true
  fi
}

build_crictl() {
  [ -x "$out/bin/crictl" ] && return 0
  command -v go >/dev/null || { echo "go is not installed; it is needed to build crictl" >&2; exit 1; }
  echo "building crictl $crictl_version (first run only)" >&2
  mkdir -p "$out/bin"
  GOBIN="$out/bin" CGO_ENABLED=0 go install -trimpath "sigs.k8s.io/cri-tools/cmd/crictl@$crictl_version" >&2
}

sha_of() { sha256sum "$1" | cut -d' ' -f1; }

# oci_archive NAME ROOTFS CONFIG_JSON OUT: a one-layer OCI image archive of ROOTFS.
oci_archive() {
  local name="$1" rootfs="$2" config_body="$3" dest="$4"
  local work
  work="$(mktemp -d)"
  mkdir -p "$work/blobs/sha256"
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$rootfs" -cf "$work/layer.tar" .
  local layer_digest layer_size
  layer_digest="$(sha_of "$work/layer.tar")"
  layer_size="$(stat -c %s "$work/layer.tar")"
  mv "$work/layer.tar" "$work/blobs/sha256/$layer_digest"
  printf '{"architecture":"amd64","os":"linux","config":%s,"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
    "$config_body" "$layer_digest" > "$work/config.json"
  local config_digest config_size
  config_digest="$(sha_of "$work/config.json")"
  config_size="$(stat -c %s "$work/config.json")"
  mv "$work/config.json" "$work/blobs/sha256/$config_digest"
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' \
    "$config_digest" "$config_size" "$layer_digest" "$layer_size" > "$work/manifest.json"
  local manifest_digest manifest_size
  manifest_digest="$(sha_of "$work/manifest.json")"
  manifest_size="$(stat -c %s "$work/manifest.json")"
  mv "$work/manifest.json" "$work/blobs/sha256/$manifest_digest"
  printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"platform":{"architecture":"amd64","os":"linux"},"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' \
    "$manifest_digest" "$manifest_size" "$name" "${name##*:}" > "$work/index.json"
  printf '{"imageLayoutVersion":"1.0.0"}' > "$work/oci-layout"
  tar -C "$work" -cf "$dest.tmp" oci-layout index.json blobs
  mv "$dest.tmp" "$dest"
  rm -rf "$work"
}

build_images() {
  [ -s "$images/pause.tar" ] && [ -s "$images/busybox.tar" ] && return 0
  command -v go >/dev/null || { echo "go is not installed; it is needed to build the sandbox image" >&2; exit 1; }
  echo "building the sandbox and busybox images (first run only)" >&2
  mkdir -p "$images"
  local work
  work="$(mktemp -d)"
  mkdir -p "$work/pause"
  (cd "$root/scripts/dev/pause" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags '-s -w' -o "$work/pause/pause" .) >&2
  oci_archive kueuer.local/pause:1 "$work/pause" '{"Entrypoint":["/pause"]}' "$images/pause.tar"

  mkdir -p "$work/busybox/bin" "$work/busybox/tmp" "$work/busybox/etc"
  cp /bin/busybox "$work/busybox/bin/busybox"
  for applet in $("$work/busybox/bin/busybox" --list); do
    [ -e "$work/busybox/bin/$applet" ] || ln -s busybox "$work/busybox/bin/$applet"
  done
  printf 'root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$work/busybox/etc/passwd"
  printf 'root:x:0:\nnobody:x:65534:\n' > "$work/busybox/etc/group"
  chmod 1777 "$work/busybox/tmp"
  oci_archive kueuer.local/busybox:1 "$work/busybox" '{"Env":["PATH=/bin"],"Cmd":["sh"]}' "$images/busybox.tar"
  rm -rf "$work"
}

install_packages
[ "${1:-}" = packages ] && exit 0
build_crictl
build_images
ln -sfn "$images_key" "$out/images/current"
echo "$out"
