#!/usr/bin/env bash
# The project's test command (README, "The two commands") and what CI runs:
# set up the real servers the integration tests need, then formatting, vet,
# staticcheck, the routing gate, every Go test with -race, and the Helm
# chart tests. Needs Go; installs the rest (see scripts/setup-integration.sh).
#
# In CI (CI=true) PARLEY_REQUIRE_INTEGRATION=1 turns every "server binary
# missing" skip into a failure, so a green CI means the integration tests ran.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOFLAGS="${GOFLAGS:-}"
if [ "${CI:-}" = true ]; then export PARLEY_REQUIRE_INTEGRATION=1; fi
start=$(date +%s)
step() { echo; echo "== $* ($(( $(date +%s) - start ))s)"; }

step "setup: real servers for integration tests"
./scripts/setup-integration.sh

step "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.cache/*'))
if [ -n "$unformatted" ]; then echo "not gofmt-clean:"; echo "$unformatted"; exit 1; fi

step "go vet"
go vet ./...

step "staticcheck"
SC="$(go env GOPATH)/bin/staticcheck"
if [ ! -x "$SC" ]; then GOFLAGS= go install honnef.co/go/tools/cmd/staticcheck@v0.8.2; fi
"$SC" ./...

step "go build"
./scripts/build.sh bin/parley
echo "bin/parley: $(du -h bin/parley | cut -f1) static binary, $(./bin/parley version)"

step "container image: Dockerfile checks (and a build where Docker runs)"
./scripts/check-image.sh bin/parley

# Each routing dataset is gated once, here (the intent-routing suite routes
# evals/routing.yaml too; `go test ./internal/app -run TestEvalCLI` runs it).
step "routing gate: parley eval routing --dataset evals/routing.yaml"
./bin/parley eval routing --dataset evals/routing.yaml --out reports/routing --min-accuracy "${PARLEY_ROUTING_GATE:-0.95}" --max-unsafe 0
for f in evals/routing-extra/*.yaml; do
	extra=()
	case "$(basename "$f")" in
	user-actions.yaml) extra=(--actions examples/actions) ;; # routes to the example user-defined actions
	esac
	./bin/parley eval routing --dataset "$f" "${extra[@]}" --out "reports/$(basename "$f" .yaml)" --min-accuracy 0.95 --max-unsafe 0 | tail -4
done

# The benchmarks that stay (README, "Performance"), run short: they must
# keep running and answering every request; their numbers are for
# `make bench` on a quiet machine, not a gate.
step "benchmarks, short: the whole path, the audit log's writers"
go test -run '^$' -bench 'BenchmarkPipeline' -benchtime 300x ./internal/app/
go test -run '^$' -bench 'BenchmarkRecordWriters/.*/writers=4$' -benchtime 300x ./internal/audit/

step "go test -race ./..."
go test -race -count=1 -timeout 30m ./...

# Every fuzz target (func FuzzX in a _test.go file) for PARLEY_FUZZTIME
# (default 20s; 0 skips), one after the other. A finding fails the run and
# leaves the input under the package's testdata/fuzz/FuzzX/, where the next
# `go test` replays it. Minimising a new input is capped so that slow
# targets keep exploring within their time.
fuzztime="${PARLEY_FUZZTIME:-20s}"
step "fuzz: $fuzztime of each target"
if [ "$fuzztime" = 0 ]; then
	echo "skipped (PARLEY_FUZZTIME=0)"
else
	targets=$(grep -rnE --include='*_test.go' --exclude-dir=.cache --exclude-dir=node_modules '^func Fuzz[A-Za-z0-9_]+\(' . |
		sed -E 's|^\./([^:]+):[0-9]+:func (Fuzz[A-Za-z0-9_]+)\(.*|\1 \2|')
	fuzzlog=$(mktemp)
	fuzz() { (cd "$dir" && go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" -fuzzminimizetime 5s .) >"$fuzzlog" 2>&1; }
	while read -r file name; do
		dir=$(dirname "$file")
		status=0
		fuzz || status=$?
		if [ "$status" -ne 0 ] && ! grep -q 'Failing input written to' "$fuzzlog" && grep -q 'context deadline exceeded' "$fuzzlog"; then
			# Go's fuzzer ends with "context deadline exceeded" and no
			# input when its time runs out while a worker is still on one
			# slow input: run the target once more; a seed that hangs, or
			# a real finding, fails again.
			echo "$dir $name: the time ran out on a slow input; once more"
			status=0
			fuzz || status=$?
		fi
		if [ "$status" -ne 0 ]; then
			cat "$fuzzlog"
			echo "fuzz: $dir $name failed; the input is under $dir/testdata/fuzz/$name/"
			exit 1
		fi
		execs=$(grep -o 'execs: [0-9]*' "$fuzzlog" | tail -1 || true)
		echo "$dir $name: ${execs:-the cached corpus replayed, no time left to fuzz}"
	done <<<"$targets"
	rm -f "$fuzzlog"
fi

step "helm chart"
PARLEY_BIN=bin/parley ./scripts/test-chart.sh

step "done"
