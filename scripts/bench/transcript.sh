#!/usr/bin/env bash
# Writes the benchmark transcript to stdout: N requests (default 10000) of
# scripts/bench/commands.txt, each from its own user, as `parley chat
# --transcript` reads them ("user@channel: message").
#   scripts/bench/transcript.sh [N]
set -euo pipefail
n="${1:-10000}"
here="$(dirname "$0")"
grep -v '^#' "$here/commands.txt" | awk -v n="$n" '
	NF { t[k++] = $0 }
	END {
		split("checkout payments auth cart", dep, " ")
		split("prod staging", ns, " ")
		for (i = 0; i < n; i++) {
			s = t[i % k]
			gsub(/\{deployment\}/, dep[int(i / k) % 4 + 1], s)
			gsub(/\{namespace\}/, ns[int(i / (4 * k)) % 2 + 1], s)
			gsub(/\{replicas\}/, 2 + int(i / k) % 7, s)
			printf "u%05d@ops: %s\n", i + 1, s
		}
	}'
