# eddy — build, run and test. `make help` lists the targets.
SHELL := /bin/bash
GO ?= go
BIN := bin
TOOLS := $(CURDIR)/bin/tools
STATICCHECK_VERSION := v0.8.2
# Each fuzz target runs this long in `make test`, and FUZZ_LONG in `make fuzz`.
FUZZ_SHORT ?= 5s
FUZZ_LONG ?= 2m
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

.PHONY: help build bench-bin plugins run test test-unit fuzz-short fuzz check deps bench bench-quick bench-go cluster-test group-test chaos clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

build: ## build bin/eddy
	$(GO) build -trimpath -o $(BIN)/eddy ./cmd/eddy

bench-bin: ## build bin/eddy-bench: eddy plus the benchmark harness and its NATS peer (kept out of bin/eddy)
	$(GO) build -trimpath -tags bench -o $(BIN)/eddy-bench ./cmd/eddy

run: build ## build and start a single-node broker on loopback (data in ./eddy-data)
	./$(BIN)/eddy serve

test: deps plugins test-unit fuzz-short ## unit + integration tests (kcat included) and a short run of every fuzz target

plugins: ## build the example Wasm plugins (plugins/examples/*/*.wasm); regenerate the WAT test modules when wat2wasm is installed
	./plugins/examples/build.sh
	@if command -v wat2wasm >/dev/null; then ./plugins/testdata/build.sh; fi

test-unit:
	$(GO) test -race -timeout 12m ./...
	# Tests that compile the example plugins skip under -race (wazero's
	# compiler is ten times slower there); they run here.
	$(GO) test -timeout 10m -run 'JSONSchemaValidator|PluginVersions|KeyPrefixPartitioner|TTLRetentionPlugin|PluginCommands' ./appliance/... ./cmd/...

fuzz-short: ## run every fuzz target for FUZZ_SHORT
	./scripts/fuzz.sh $(FUZZ_SHORT)

fuzz: ## run every fuzz target for FUZZ_LONG
	./scripts/fuzz.sh $(FUZZ_LONG)

check: $(TOOLS)/staticcheck ## gofmt, vet, staticcheck, go mod tidy diff, import direction
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags bench ./cmd/...
	$(TOOLS)/staticcheck ./...
	$(TOOLS)/staticcheck -tags bench ./cmd/...
	@cp go.mod /tmp/eddy-go.mod.bak; cp go.sum /tmp/eddy-go.sum.bak; $(GO) mod tidy; \
	  if ! cmp -s go.mod /tmp/eddy-go.mod.bak || ! cmp -s go.sum /tmp/eddy-go.sum.bak; then \
	  echo "go mod tidy changes go.mod/go.sum; run it and commit the result:"; diff -u /tmp/eddy-go.mod.bak go.mod; \
	  cp /tmp/eddy-go.mod.bak go.mod; cp /tmp/eddy-go.sum.bak go.sum; exit 1; fi
	./scripts/check-imports.sh

$(TOOLS)/staticcheck:
	GOBIN=$(TOOLS) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

deps: ## install what the tests need (kcat from Debian's packages) when missing
	@command -v kcat >/dev/null || { echo "installing kcat (Debian package)"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends kcat >/dev/null; }

CHAOS_DURATION ?= 10m
chaos: build ## the chaos schedule for CHAOS_DURATION (root): 3 nodes in network namespaces, every fault kind, checked; report in bench/results/chaos
	@mkdir -p bench/results/chaos
	$(GO) build -o $(BIN)/eddy-chaos ./cmd/eddy-chaos
	./$(BIN)/eddy-chaos --eddy $(BIN)/eddy --duration $(CHAOS_DURATION) --report bench/results/chaos/summary.md --json bench/results/chaos/report.json

cluster-test: ## three eddy processes from firmware-config/examples/three-node: 10 leader kills, failover times
	@mkdir -p bench/results
	set -o pipefail; EDDY_CLUSTER_ROUNDS=10 $(GO) test -count=1 -run 'TestClusterProcesses' -v -timeout 20m ./cmd/eddy/ 2>&1 \
	  | tee bench/results/cluster-test.log | grep -E '_test.go|^(---|ok|FAIL|PASS)'

group-test: ## eddy consume --group processes over QUIC and TCP: 7 member kills, rebalance times
	@mkdir -p bench/results
	set -o pipefail; EDDY_GROUP_ROUNDS=7 $(GO) test -count=1 -run 'TestGroupConsumerProcesses' -v -timeout 20m ./cmd/eddy/ 2>&1 \
	  | tee bench/results/group-test.log | grep -E '_test.go|^(---|ok|FAIL|PASS)'

bench: bench-bin plugins ## the standard suite, eddy vs NATS JetStream (about 30 min); reports in bench/results/standard
	./$(BIN)/eddy-bench bench run --suite standard --out bench/results/standard

bench-quick: bench-bin ## a 2-minute eddy vs NATS run; summary.md, JSON and PNG charts in bench/results/quick
	./$(BIN)/eddy-bench bench run --suite quick --targets eddy-quic,eddy-tcp,nats --runs 3 --out bench/results/quick

bench-go: ## single-node produce/consume Go benchmarks over QUIC and TCP (go test -bench)
	$(GO) test -run '^$$' -bench . -benchtime 5s -timeout 30m ./bench/

clean: ## remove build output (not ./eddy-data)
	rm -rf $(BIN)
