#!/usr/bin/env bash
# Builds VictoriaLogs, a Loki-compatible log store, into .cache/bin for the
# integration test of internal/audit/lokisink (it serves Loki's push API at
# /insert/loki/api/v1/push). Idempotent: does nothing when the pinned version
# is already there. Needs only Go and the Go module proxy; the binary is
# built from source (Apache-2.0), pure Go, outside the project's go.mod.
#
#   scripts/build-victorialogs.sh        # then: go test ./internal/audit/lokisink/
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=v1.52.1
BIN_DIR="$PWD/.cache/bin"
BIN="$BIN_DIR/victoria-logs"
STAMP="$BIN.version"

if [ -x "$BIN" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$VERSION" ]; then
	echo "victoria-logs $VERSION already in $BIN"
	exit 0
fi

mkdir -p "$BIN_DIR"
echo "building victoria-logs $VERSION into $BIN"
# go install with a version ignores the current module, so the project's
# go.mod and go.sum are not touched.
GOBIN="$BIN_DIR" CGO_ENABLED=0 GOFLAGS=-mod=mod \
	go install "github.com/VictoriaMetrics/VictoriaLogs/app/victoria-logs@$VERSION"
echo "$VERSION" > "$STAMP"
echo "victoria-logs $VERSION built"
