#!/usr/bin/env bash
# How big Parley is: the release binary's size, what makes it large (the
# modules with the most code and data, from an unstripped build of the
# same source), and the resident memory of an idle `parley serve` and of
# a process that only started (`parley version`).
#
#   scripts/bench-footprint.sh [TOP]     (TOP modules listed, default 15)
#
# Needs Go, binutils' size and GNU time (/usr/bin/time).
set -euo pipefail
cd "$(dirname "$0")/.."
top="${1:-15}"
work="$(mktemp -d)"
pid=""
cleanup() {
	if [[ -n "$pid" ]]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
	rm -rf "$work"
}
trap cleanup EXIT

./scripts/build.sh "$work/parley" >/dev/null
# Drop the fresh binary's pages from the page cache, so it is loaded from
# disk as an installed binary is (see bench-vs-hubot.sh).
sync "$work/parley"
dd if="$work/parley" iflag=nocache count=0 status=none
CGO_ENABLED=0 go build -trimpath -o "$work/parley-symbols" ./cmd/parley
size=$(stat -c %s "$work/parley")
echo "release binary (scripts/build.sh, stripped): $((size / 1024 / 1024)) MiB ($size bytes), $(go version -m "$work/parley" | grep -c $'^\tdep') modules"

# Sections of the unstripped build: code, the tables the runtime needs to
# walk it (pclntab), read-only data.
echo
echo "sections (unstripped build):"
size -A -d "$work/parley-symbols" | awk '$1 ~ /^\.(text|rodata|gopclntab|noptrdata|data)$/ {
	printf "  %-12s %7.1f MiB\n", $1, $2 / 1048576 }'

# Code and data by module: every symbol is charged to the longest module
# path (go version -m) it starts with; the rest is the standard library
# and the runtime.
echo
echo "code and data by module (top $top, symbol sizes of the unstripped build):"
go version -m "$work/parley" | awk '$1 == "dep" { print $2 }' >"$work/modules"
# Zero-filled sections take no room in the file: their symbols are left out.
size -A -d "$work/parley-symbols" | awk '$1 ~ /bss$/ { print $3, $3 + $2 }' >"$work/bss"
go tool nm -size "$work/parley-symbols" | awk -v top="$top" '
	function hex(s,    i, c, v) {
		v = 0
		for (i = 1; i <= length(s); i++) { c = index("0123456789abcdef", tolower(substr(s, i, 1))); v = v * 16 + c - 1 }
		return v
	}
	FILENAME == ARGV[1] { mods[++n] = $1; next }
	FILENAME == ARGV[2] { lo[++b] = $1; hi[b] = $2; next }
	{
		addr = hex($1)
		for (i = 1; i <= b; i++) if (addr >= lo[i] && addr < hi[i]) next
		name = $4
		sub(/^type:/, "", name); sub(/^go:itab\./, "", name); sub(/^\*/, "", name)
		best = ""
		for (i = 1; i <= n; i++) if (index(name, mods[i]) == 1 && length(mods[i]) > length(best)) best = mods[i]
		if (best == "") best = (index(name, "github.com/parley-chatops/parley") == 1) ? "(parley itself)" : "(standard library and runtime)"
		sum[best] += $2
	}
	END {
		for (m in sum) printf "%12.0f %s\n", sum[m], m
	}' "$work/modules" "$work/bss" - | sort -rn | head -n "$top" | awk '{ printf "  %7.1f MiB  %s\n", $1 / 1048576, substr($0, index($0, $2)) }'

echo
/usr/bin/time -o "$work/time" -f '%M' "$work/parley" version >/dev/null
echo "peak RSS of \`parley version\` (start-up only): $(( $(cat "$work/time") / 1024 )) MiB"

# An idle `parley serve`: embedded defaults (sandbox cluster, no chat
# platform), a fresh database, the HTTP listener on a free port.
port=$(( 20000 + RANDOM % 20000 ))
printf 'database: %s\nlisten: "127.0.0.1:%s"\n' "$work/parley.db" "$port" >"$work/parley.yaml"
"$work/parley" serve --config "$work/parley.yaml" >"$work/serve.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
	if grep -q "parley serving" "$work/serve.log"; then break; fi
	sleep 0.1
done
grep -q "parley serving" "$work/serve.log" || { echo "parley serve did not start:" >&2; cat "$work/serve.log" >&2; exit 1; }
sleep 3 # settled: start-up garbage collected
rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$pid/status")
anon=$(awk '/^RssAnon/ { print $2 }' "/proc/$pid/status")
file=$(awk '/^RssFile/ { print $2 }' "/proc/$pid/status")
echo "idle \`parley serve\` RSS: $((rss / 1024)) MiB ($((file / 1024)) MiB of it the binary's own pages, $((anon / 1024)) MiB heap and other memory)"
