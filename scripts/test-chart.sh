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
	# helm, built from the version pinned in tools/charttest/go.mod. The
	# ldflags give it the Kubernetes version it was built against, as the
	# release build does (otherwise it assumes Kubernetes 1.20).
	helm_version=$(awk '$1 == "helm.sh/helm/v3" {print $2; exit}' tools/charttest/go.mod)
	k8s_minor=$(awk '$1 == "k8s.io/client-go" {print $2; exit}' tools/charttest/go.mod | cut -d. -f2)
	stamp="$out/.helm.stamp"
	want="$helm_version k8s1.$k8s_minor $(go env GOVERSION)"
	if [ ! -x "$out/helm" ] || [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
		echo "== chart: building helm $helm_version into .cache/bin"
		start=$(date +%s)
		(
			cd tools/charttest
			ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$helm_version"
			for p in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
				ldflags="$ldflags -X $p.k8sVersionMajor=1 -X $p.k8sVersionMinor=$k8s_minor"
			done
			GOFLAGS=-mod=readonly CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$out/helm" helm.sh/helm/v3/cmd/helm
		)
		echo "$want" >"$stamp"
		echo "== chart: built helm in $(($(date +%s) - start))s"
	fi
	echo "== chart: helm lint --strict"
	"$out/helm" lint charts/parley --strict --namespace parley
	for f in tools/charttest/testdata/values-*.yaml; do
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
