#!/usr/bin/env bash
# Builds the static parley binary: the one command the Dockerfile, the
# Makefile and the test script all use, so CI builds what ships.
#   scripts/build.sh [OUTPUT]        (default bin/parley; VERSION overrides the baked-in version)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-bin/parley}"
version="${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}"
mkdir -p "$(dirname "$out")"
CGO_ENABLED=0 go build -trimpath \
	-ldflags "-s -w -X github.com/parley-chatops/parley/internal/app.Version=${version}" \
	-o "$out" ./cmd/parley
