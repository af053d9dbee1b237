#!/usr/bin/env bash
# The real single-node cluster of the tests (test/helpers/node.ts), for a developer:
#   npm run cluster -- up     start it (needs root), print KUBECONFIG, stay up until Ctrl-C
#   npm run cluster -- down   stop it from another shell, or clean up after one that died
# KUEUER_CLUSTER_AFTER_UP="<command>" runs once it is up, with KUBECONFIG set (install Kueuer there).
set -euo pipefail
cd "$(dirname "$0")/../.."
usage="usage: npm run cluster -- up|down   (up: start it, needs root, stays up until Ctrl-C; down: stop it)"
[ $# -le 1 ] || { echo "$usage" >&2; exit 2; }
case "${1:-}" in
  up | down) ;;
  -h | --help) echo "$usage"; exit 0 ;;
  *) echo "$usage" >&2; exit 2 ;;
esac
[ "$(id -u)" = 0 ] || { echo "the real node needs root (containerd, the kubelet, iptables, a bridge)" >&2; exit 1; }
[ "$1" = up ] && bash scripts/dev/node.sh >/dev/null
exec npx vite-node test/helpers/cluster-cli.ts "$1"
