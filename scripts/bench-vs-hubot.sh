#!/usr/bin/env bash
# Plays the benchmark command script (scripts/bench/commands.txt, N
# requests from N distinct users, so no rate limit applies) through
# `parley chat --transcript` with the default policy, on a durable SQLite
# file and on --db :memory:, side by side with Hubot 14.1's regex dispatch
# of the same script, and prints wall time and peak RSS of each (median,
# min and max of R runs) and Parley's ratio to Hubot.
#
#   scripts/bench-vs-hubot.sh [N] [R]      (defaults: 10000 requests, 3 runs)
#
# Hubot comes from the npm registry into a cache folder outside the
# repository ($PARLEY_BENCH_CACHE, default ~/.cache/parley-bench); only
# the tiny listener script and adapter in scripts/bench/hubot are ours.
# PARLEY_BIN names a prebuilt binary (default: scripts/build.sh builds
# bin/parley). Needs node >= 18, npm and GNU time (/usr/bin/time).
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"
n="${1:-10000}"
runs="${2:-3}"
cache="${PARLEY_BENCH_CACHE:-$HOME/.cache/parley-bench}"
bin="${PARLEY_BIN:-}"

for tool in node npm /usr/bin/time; do
	command -v "$tool" >/dev/null || { echo "bench-vs-hubot: $tool is missing" >&2; exit 2; }
done
if [[ -z "$bin" ]]; then
	./scripts/build.sh bin/parley >/dev/null
	bin="$repo/bin/parley"
fi

hubot="$cache/hubot-14.1"
if [[ ! -f "$hubot/node_modules/hubot/package.json" ]]; then
	mkdir -p "$hubot"
	(cd "$hubot" && printf '{"name":"parley-bench-hubot","private":true,"type":"module"}\n' >package.json &&
		npm install --no-audit --no-fund --loglevel=error hubot@14.1 >/dev/null)
fi
cp scripts/bench/hubot/*.mjs "$hubot/"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# Parley runs from a copy whose pages are first dropped from the page
# cache, so that it is loaded from disk, as an installed binary is.
# Straight from the linker, its pages sit in the page cache in
# the large folios the linker's writes made, and every page fault then
# maps a whole folio: the same program showed 44 to 63 MiB of the
# binary resident, depending only on how the file was written.
cp "$bin" "$work/parley"
sync "$work/parley"
dd if="$work/parley" iflag=nocache count=0 status=none
bin="$work/parley"
transcript="$work/transcript.txt"
scripts/bench/transcript.sh "$n" >"$transcript"

# measure NAME CMD...: one run; appends "NAME wall_s peak_kib" to results.
measure() {
	local name="$1"
	shift
	/usr/bin/time -o "$work/time" -f '%e %M' "$@" >"$work/$name.out" 2>"$work/$name.err" || {
		echo "bench-vs-hubot: $name failed:" >&2
		tail -5 "$work/$name.err" >&2
		exit 1
	}
	echo "$name $(cat "$work/time")" >>"$work/results"
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(uname -sr)"
echo "parley:  $("$bin" version), $n requests, $runs runs each (the order rotates)"
echo "hubot:   $(node -p "require('$hubot/node_modules/hubot/package.json').version") on node $(node --version)"
# Parley runs in the repository so that it finds evals/ as `parley chat`
# would; its database lives in the temporary folder.
for ((r = 1; r <= runs; r++)); do
	order=(hubot durable memory)
	for ((k = 0; k < 3; k++)); do
		which="${order[(r + k) % 3]}"
		case "$which" in
		hubot) (cd "$hubot" && BENCH_TRANSCRIPT="$transcript" measure hubot node run.mjs) ;;
		durable)
			rm -f "$work"/bench.db*
			measure durable "$bin" chat --transcript "$transcript" --db "$work/bench.db"
			"$bin" audit verify --db "$work/bench.db" >"$work/verify.out" 2>&1 ||
				{ echo "bench-vs-hubot: audit verify failed:" >&2; cat "$work/verify.out" >&2; exit 1; }
			;;
		memory) measure memory "$bin" chat --transcript "$transcript" --db :memory: ;;
		esac
	done
done

answered=$(grep -c '^u[0-9]*@ops> ' "$work/durable.out" || true)
[[ "$answered" == "$n" ]] || { echo "bench-vs-hubot: parley echoed $answered of $n requests" >&2; exit 1; }
echo "durable run: $(head -1 "$work/verify.out")"

awk '
	{ wall[$1] = wall[$1] " " $2; rss[$1] = rss[$1] " " $3 }
	function median(list,    a, k, i, j, t) {
		k = split(list, a, " ")
		for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
		lo = a[1]; hi = a[k]
		return (k % 2) ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
	}
	END {
		hw = median(wall["hubot"])
		printf "%-16s %10s %17s %9s %14s\n", "run", "wall s", "(min-max)", "x hubot", "peak RSS MiB"
		split("hubot durable memory", order, " ")
		label["hubot"] = "hubot 14.1"; label["durable"] = "parley sqlite"; label["memory"] = "parley :memory:"
		for (o = 1; o <= 3; o++) {
			k = order[o]
			w = median(wall[k]); wlo = lo; whi = hi
			m = median(rss[k]) / 1024
			printf "%-16s %10.2f %8.2f-%-8.2f %9.1f %14.1f\n", label[k], w, wlo, whi, w / hw, m
		}
	}' "$work/results"
