#!/usr/bin/env bash
# Builds helm into .cache/bin from the version pinned in
# tools/charttest/go.mod (the same Helm the chart tests render with), for
# `helm lint` and `helm template` in scripts/test-chart.sh and for the
# chart install test on the real control plane (internal/app). The first
# build downloads Helm's modules and takes a few minutes; after that the
# stamp file makes this a no-op. The binary is written beside its final
# name and renamed, so a reader never runs half a file.
set -euo pipefail
cd "$(dirname "$0")/.."
out="$(pwd)/.cache/bin"
mkdir -p "$out"
export GOWORK=off

helm_version=$(awk '$1 == "helm.sh/helm/v3" {print $2; exit}' tools/charttest/go.mod)
k8s_minor=$(awk '$1 == "k8s.io/client-go" {print $2; exit}' tools/charttest/go.mod | cut -d. -f2)
stamp="$out/.helm.stamp"
want="$helm_version k8s1.$k8s_minor $(go env GOVERSION)"
if [ -x "$out/helm" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
	exit 0
fi
echo "== building helm $helm_version into .cache/bin"
start=$(date +%s)
tmp="$out/.helm.$$"
trap 'rm -f "$tmp"' EXIT
(
	cd tools/charttest
	# The ldflags give helm the Kubernetes version it was built against, as
	# the release build does (otherwise it assumes Kubernetes 1.20).
	ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$helm_version"
	for p in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
		ldflags="$ldflags -X $p.k8sVersionMajor=1 -X $p.k8sVersionMinor=$k8s_minor"
	done
	GOFLAGS=-mod=readonly CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$tmp" helm.sh/helm/v3/cmd/helm
)
mv -f "$tmp" "$out/helm"
echo "$want" >"$stamp"
echo "== built helm in $(($(date +%s) - start))s"
