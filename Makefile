# Parley — common tasks. `make help` lists them.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

.PHONY: help build demo test lint eval bench bench-router bench-hubot bench-footprint fuzz clean

help:            ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

build:           ## build bin/parley (static; the same script the Dockerfile and CI use)
	VERSION=$(VERSION) ./scripts/build.sh bin/parley

demo: build      ## chat with Parley on embedded defaults (sandbox cluster, no tokens)
	./bin/parley chat

test:            ## everything CI runs: vet, staticcheck, race tests, the routing gate
	./scripts/test.sh

eval: build      ## score the rules router on evals/routing.yaml (CSV + HTML in reports/)
	./bin/parley eval routing --dataset evals/routing.yaml --out reports/routing

bench:           ## the whole path (req/s, p50/p99 latency, allocations) and the audit log's writers
	$(GO) test -run '^$$' -bench 'BenchmarkPipeline' -benchtime $${BENCH_REQUESTS:-5000}x -count $${BENCH_COUNT:-1} ./internal/app/
	$(GO) test -run '^$$' -bench 'BenchmarkRecordWriters' -benchtime 2000x -count $${BENCH_COUNT:-1} ./internal/audit/

bench-router:    ## router benchmarks
	$(GO) test -run '^$$' -bench . -benchmem -cpu 1 ./internal/intent/rules/

bench-hubot:     ## the 10k command script through parley chat beside Hubot 14.1 (wall time, peak RSS)
	./scripts/bench-vs-hubot.sh

bench-footprint: ## binary size by module, idle serve RSS
	./scripts/bench-footprint.sh

fuzz:            ## a short fuzzing pass over the text normaliser, the policy loader and the action-file loader
	$(GO) test -run '^$$' -fuzz FuzzNormalize -fuzztime 30s ./internal/intent/rules/
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime 30s ./internal/policy/
	$(GO) test -run '^$$' -fuzz FuzzLoad -fuzztime 30s -fuzzminimizetime 3s ./actions/useraction/

clean:           ## remove build output, reports and the local database
	rm -rf bin reports .parley
