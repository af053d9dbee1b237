#!/usr/bin/env bash
# Builds the control-plane binaries the tests need, from Go modules, into
# .cache/k8s/<version>/bin, and prints that directory on its last line:
#   etcd                     (go.etcd.io/etcd/server/v3)
#   kube-apiserver, kube-controller-manager, kubectl   (k8s.io/kubernetes)
#   kube-scheduler, kubelet, kube-proxy (k8s.io/kubernetes; the real node)
#
# k8s.io/kubernetes cannot be `go install`ed: its go.mod pins its staging
# modules (k8s.io/api, k8s.io/apimachinery, …) at v0.0.0 with replace
# directives into ./staging. So a small module of our own requires
# k8s.io/kubernetes at the wanted tag and replaces each staging module with
# its published v0.X release; the list is generated from that tag's go.mod.
# etcd's server module carries replace directives too, so it gets the same
# treatment. A second run finds the binaries and returns at once.
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
k8s_version="${KUEUER_K8S_VERSION:-v1.34.4}"
etcd_version="${KUEUER_ETCD_VERSION:-v3.6.16}"
out="$root/.cache/k8s/$k8s_version-etcd-$etcd_version"
bin="$out/bin"
binaries=(etcd kube-apiserver kube-controller-manager kubectl kube-scheduler kubelet kube-proxy)

have_all() {
  for b in "${binaries[@]}"; do [ -x "$bin/$b" ] || return 1; done
}
if have_all; then
  echo "$bin"
  exit 0
fi
command -v go >/dev/null || { echo "go is not installed; it is needed to build the control plane" >&2; exit 1; }
mkdir -p "$bin" "$out/src/k8s" "$out/src/etcd"
export GOFLAGS="${GOFLAGS:-} -mod=mod"

# ---- etcd --------------------------------------------------------------
if [ ! -x "$bin/etcd" ]; then
  echo "building etcd $etcd_version (first run only)" >&2
  etcd_mod="$(go mod download -json "go.etcd.io/etcd/server/v3@$etcd_version" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
  etcd_minor="${etcd_version#v3}"
  {
    echo "module kueuer.local/etcd"
    echo "go 1.24.0"
    echo "require go.etcd.io/etcd/server/v3 $etcd_version"
    # Its sibling modules (api, client, pkg, …) are published at the same version.
    sed -n '/^replace (/,/^)/p' "$etcd_mod" | grep -E '=> \.\./' | awk -v v="v3$etcd_minor" '{print "replace " $1 " => " $1 " " v}'
  } > "$out/src/etcd/go.mod"
  printf '//go:build tools\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' > "$out/src/etcd/tools.go"
  (cd "$out/src/etcd" && go mod tidy >&2 && go build -trimpath -o "$bin/etcd" go.etcd.io/etcd/server/v3 >&2)
fi

# ---- kubernetes --------------------------------------------------------
k8s_mod="$(go mod download -json "k8s.io/kubernetes@$k8s_version" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
staging_version="v0${k8s_version#v1}"
go_line="$(grep -m1 '^go ' "$k8s_mod")"
{
  echo "module kueuer.local/k8s"
  echo "$go_line"
  echo "require k8s.io/kubernetes $k8s_version"
  grep -E '^\s*k8s\.io/[a-z0-9-]+ => \./staging/' "$k8s_mod" | awk -v v="$staging_version" '{print "replace " $1 " => " $1 " " v}'
} > "$out/src/k8s/go.mod"
cat > "$out/src/k8s/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubelet"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
)
GO
minor="${k8s_version#v1.}"
minor="${minor%%.*}"
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$k8s_version -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"
ldflags="$ldflags -X k8s.io/client-go/pkg/version.gitVersion=$k8s_version -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$minor"
(cd "$out/src/k8s" && go mod tidy >&2)
for cmd in kube-apiserver kube-controller-manager kubectl kube-scheduler kubelet kube-proxy; do
  if [ ! -x "$bin/$cmd" ]; then
    echo "building $cmd $k8s_version (first run only; several minutes)" >&2
    # The node's binaries are static, as upstream ships them (no libc needed).
    cgo=1
    case "$cmd" in kubelet | kube-proxy) cgo=0 ;; esac
    (cd "$out/src/k8s" && CGO_ENABLED=$cgo go build -trimpath -ldflags "$ldflags" -o "$bin/$cmd" "k8s.io/kubernetes/cmd/$cmd" >&2)
  fi
done
have_all
echo "$bin"
