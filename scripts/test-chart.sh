#!/usr/bin/env bash
# Tests the Helm chart in charts/parley: `helm lint --strict` on each test
# values file, then the Go rendering tests in tools/charttest (every
# manifest decoded strictly into typed Kubernetes objects, RBAC, secrets,
# schema, alerts, dashboard) and, with the parley binary built from this
# tree, `parley config validate` on each rendered config.yaml.
#
# tools/charttest is its own module, so helm.sh/helm/v3 stays out of the
# main module. The first run downloads its modules and builds helm into
# .cache/bin (a few minutes); later runs reuse both and take seconds.
# Set PARLEY_CHART_SKIP_LINT=1 to skip building helm and linting, and
# PARLEY_BIN to a parley binary already built from this tree (scripts/test.sh
# builds bin/parley) to skip building it again.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
out="$root/.cache/bin"
mkdir -p "$out"
export GOWORK=off

if [ "${PARLEY_CHART_SKIP_LINT:-}" != 1 ]; then
	./scripts/build-helm.sh
	echo "== chart: helm lint --strict"
	"$out/helm" lint charts/parley --strict --namespace parley
	for f in tools/charttest/testdata/values-*.yaml charts/parley/values-production.yaml; do
		"$out/helm" lint charts/parley --strict --namespace parley -f "$f" >/dev/null || {
			"$out/helm" lint charts/parley --strict --namespace parley -f "$f"
			exit 1
		}
		echo "lint ok: $f"
	done
fi

if [ -z "${PARLEY_BIN:-}" ]; then
	echo "== chart: building parley (to validate the rendered configuration)"
	CGO_ENABLED=0 go build -trimpath -o "$out/parley-charttest" ./cmd/parley
	PARLEY_BIN="$out/parley-charttest"
fi
PARLEY_BIN=$(cd "$(dirname "$PARLEY_BIN")" && pwd)/$(basename "$PARLEY_BIN")

echo "== chart: go test (tools/charttest)"
cd tools/charttest
PARLEY_BIN="$PARLEY_BIN" GOFLAGS=-mod=readonly go test -count=1 ./...
