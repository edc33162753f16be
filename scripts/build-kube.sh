#!/usr/bin/env bash
# Builds the Kubernetes control plane that the integration tests run against
# (etcd, kube-apiserver, kube-controller-manager) from the Go module proxy into
# .cache/bin, using the separate module in tools/kube. Idempotent: when the
# binaries exist and were built from the same tools/kube sources and Go
# version, it does nothing. The first build takes several minutes on 2 cores;
# later ones reuse Go's build cache.
#
#   scripts/build-kube.sh            build when needed
#   scripts/build-kube.sh --force    rebuild
#
# Tests find the binaries in .cache/bin (or $KUBEBUILDER_ASSETS).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
out="$root/.cache/bin"
stamp="$out/.kube-build-stamp"
mkdir -p "$out"

bins=(etcd kube-apiserver kube-controller-manager)
k8s_version=$(awk '$1 == "k8s.io/kubernetes" {print $2; exit}' tools/kube/go.mod)
if [ -z "$k8s_version" ]; then
	echo "build-kube: no k8s.io/kubernetes version in tools/kube/go.mod" >&2
	exit 1
fi
# The stamp names everything the binaries are built from.
want=$(cat tools/kube/go.mod tools/kube/go.sum tools/kube/etcd/main.go scripts/build-kube.sh | sha256sum | cut -d' ' -f1)
want="$want $(go env GOVERSION)"

have_all=1
for b in "${bins[@]}"; do [ -x "$out/$b" ] || have_all=0; done
if [ "${1:-}" != "--force" ] && [ "$have_all" = 1 ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
	echo "build-kube: up to date in .cache/bin (kubernetes $k8s_version): ${bins[*]}"
	exit 0
fi

# The binaries report the release they were built from, as a release build would.
minor=$(echo "$k8s_version" | cut -d. -f2)
ldflags="-s -w"
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
	ldflags="$ldflags -X $p.gitVersion=$k8s_version -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
done

echo "build-kube: building ${bins[*]} (kubernetes $k8s_version, $(go env GOVERSION)) into .cache/bin"
start=$(date +%s)
rm -f "$stamp"
(
	cd tools/kube
	# tools/kube is its own module: its go.mod and go.sum are complete, so
	# -mod=readonly holds; GOWORK=off keeps any workspace out of it.
	export GOWORK=off GOFLAGS=-mod=readonly CGO_ENABLED=0
	go build -trimpath -ldflags "$ldflags" -o "$out/" \
		./etcd \
		k8s.io/kubernetes/cmd/kube-apiserver \
		k8s.io/kubernetes/cmd/kube-controller-manager
)
echo "$want" >"$stamp"
echo "build-kube: built ${bins[*]} in $(($(date +%s) - start))s"
