#!/usr/bin/env bash
# Builds the third-party HTTP apps the foreign-peer suites (test/foreign) put
# behind Kueuer, into .cache/third-party/, and prints on its last line the
# path of the go-httpbin binary:
#   go-httpbin   (Go module github.com/mccutchen/go-httpbin/v2, cmd/go-httpbin)
# built static with `go install` from the Go module proxy
# (scripts/dev/go-install.sh). Only this build touches the network; the tests
# then run the binary on loopback. A second run finds the binary and returns
# at once. A failed build exits non-zero, which fails the test run (nothing is
# skipped).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
httpbin_version="${KUEUER_GO_HTTPBIN_VERSION:-v2.26.0}"
exec bash "$root/scripts/dev/go-install.sh" "github.com/mccutchen/go-httpbin/v2/cmd/go-httpbin@$httpbin_version" \
  "$root/.cache/third-party/go-httpbin-$httpbin_version/go-httpbin" "test/foreign"
