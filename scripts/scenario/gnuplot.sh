#!/usr/bin/env bash
# Makes sure gnuplot (Debian's gnuplot-nox: no X, with the pngcairo terminal)
# is installed, installing it with apt-get when missing, as scripts/dev/rabbitmq.sh
# installs rabbitmq-server; prints the path of gnuplot on its last line.
# The scenario runner (scripts/scenario/) draws its pictures with it.
set -euo pipefail

if ! command -v gnuplot >/dev/null; then
  echo "installing gnuplot-nox from Debian (first run only)" >&2
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get install -y -qq --no-install-recommends gnuplot-nox >&2 ||
    { $sudo apt-get update -qq >&2 && $sudo apt-get install -y -qq --no-install-recommends gnuplot-nox >&2; }
fi
gnuplot="$(command -v gnuplot)"
if ! "$gnuplot" -e 'set terminal' 2>&1 | grep -q pngcairo; then
  echo "$gnuplot has no pngcairo terminal; install Debian's gnuplot-nox" >&2
  exit 1
fi
echo "$gnuplot"
