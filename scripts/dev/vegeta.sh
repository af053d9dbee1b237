#!/usr/bin/env bash
# Builds vegeta (github.com/tsenart/vegeta/v12, the open-loop HTTP load
# generator the scenario runner drives: scripts/scenario/) once from the Go
# module proxy into .cache/vegeta/ (scripts/dev/go-install.sh), and prints on
# its last line the path of the binary. A failed build exits non-zero.
# KUEUER_VEGETA_VERSION overrides the version (default v12.13.0).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
version="${KUEUER_VEGETA_VERSION:-v12.13.0}"
exec bash "$root/scripts/dev/go-install.sh" "github.com/tsenart/vegeta/v12@$version" "$root/.cache/vegeta/$version/vegeta" "the scenario runner"
