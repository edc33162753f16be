#!/usr/bin/env bash
# Runs every check and test of the project: the README's test command and
# what CI runs. Needs only Go; installs staticcheck into $(go env GOPATH)/bin
# when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.cache/*'))
if [ -n "$unformatted" ]; then echo "not gofmt-clean:"; echo "$unformatted"; exit 1; fi

echo "== go vet"
go vet ./...

echo "== staticcheck"
SC="$(go env GOPATH)/bin/staticcheck"
if [ ! -x "$SC" ]; then GOFLAGS= go install honnef.co/go/tools/cmd/staticcheck@v0.8.2; fi
"$SC" ./...

echo "== go build"
mkdir -p bin
CGO_ENABLED=0 go build -trimpath -o bin/parley ./cmd/parley

echo "== routing gate (evals/routing.yaml)"
./bin/parley eval routing --dataset evals/routing.yaml --out reports/routing --min-accuracy "${PARLEY_ROUTING_GATE:-0.95}" --max-unsafe 0

echo "== go test -race"
go test -race -count=1 ./...
