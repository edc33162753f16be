#!/usr/bin/env bash
# Installs and builds the real servers the integration tests start on
# 127.0.0.1: Prometheus and Alertmanager (Debian packages), Chromium (report
# screenshots), VictoriaLogs (a Loki-compatible receiver), and etcd,
# kube-apiserver and kube-controller-manager (built from the Go module proxy
# into .cache/bin). PostgreSQL's server binaries come with the machine.
#
# Idempotent and quick once done. Without root (a developer laptop) the
# Debian part is skipped with a note and those tests skip, unless
# PARLEY_REQUIRE_INTEGRATION=1 (CI), where a missing server is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs=()
command -v prometheus >/dev/null 2>&1 || need_pkgs+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 || need_pkgs+=(prometheus-alertmanager)
command -v chromium >/dev/null 2>&1 || need_pkgs+=(chromium)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_pkgs+=(postgresql)
if [ ${#need_pkgs[@]} -gt 0 ]; then
	if [ "$(id -u)" = 0 ]; then
		echo "== apt-get install ${need_pkgs[*]}"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq || true
		apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
		# The packages may start system services; the tests run their own.
		for svc in prometheus prometheus-alertmanager prometheus-node-exporter postgresql; do
			service "$svc" stop >/dev/null 2>&1 || true
		done
	else
		echo "note: not root, skipping apt-get install ${need_pkgs[*]} (their tests will skip)"
	fi
fi

./scripts/build-victorialogs.sh
./scripts/build-kube.sh
./scripts/build-helm.sh   # the chart install test renders with it
