# eddy — build, run and test. `make help` lists the targets.
SHELL := /bin/bash
GO ?= go
BIN := bin
TOOLS := $(CURDIR)/bin/tools
STATICCHECK_VERSION := v0.8.2
# Each fuzz target runs FUZZ_SHORT in `make test` and FUZZTIME in `make
# fuzz`, with FUZZ_PARALLEL workers; scripts/fuzz.sh finds the targets.
FUZZ_SHORT ?= 5s
FUZZTIME ?= 60s
FUZZ_PARALLEL ?= 2
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

.PHONY: help build bench-bin plugins run test test-unit fuzz-short fuzz check deps bench bench-quick bench-go cluster-test group-test chaos crash-test clean image-deps image image-boot image-test

help: ## list targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

build: ## build bin/eddy
	$(GO) build -trimpath -o $(BIN)/eddy ./cmd/eddy

.PHONY: build-arm64 image-deps-arm64 image-arm64
build-arm64: ## cross-compile bin/eddy-linux-arm64 (static, linux/arm64)
	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/eddy-linux-arm64 ./cmd/eddy

bench-bin: ## build bin/eddy-bench: eddy plus the benchmark harness and its NATS peer (kept out of bin/eddy)
	$(GO) build -trimpath -tags bench -o $(BIN)/eddy-bench ./cmd/eddy

run: build ## build and start a single-node broker on loopback (data in ./eddy-data)
	./$(BIN)/eddy serve

test: deps plugins test-unit fuzz-short ## unit + integration tests (kcat included) and a short run of every fuzz target

plugins: ## build the example Wasm plugins (plugins/examples/*/*.wasm); regenerate the WAT test modules when wat2wasm is installed
	./plugins/examples/build.sh
	@if command -v wat2wasm >/dev/null; then ./plugins/testdata/build.sh; fi

test-unit:
	$(GO) test -race -timeout 12m -skip '^TestGroupCoordinatorFailover$$' ./...
	# A group on a 3-node cluster through a coordinator failover: it needs
	# the cores to itself (beside the other packages' tests it starved and
	# timed out), so it runs alone.
	$(GO) test -race -timeout 8m -run '^TestGroupCoordinatorFailover$$' ./appliance/
	# Tests that compile the example plugins skip under -race (wazero's
	# compiler is ten times slower there); they run here.
	$(GO) test -timeout 10m -run 'JSONSchemaValidator|PluginVersions|KeyPrefixPartitioner|TTLRetentionPlugin|PluginCommands' ./appliance/... ./cmd/...
	# The short chaos schedule (root only; it skips itself otherwise) runs
	# alone: it loads both cores for two minutes.
	EDDY_CHAOS=1 $(GO) test -count=1 -timeout 10m -run TestChaosShort ./chaos/

fuzz-short: ## run every fuzz target for FUZZ_SHORT
	FUZZ_PARALLEL=$(FUZZ_PARALLEL) ./scripts/fuzz.sh $(FUZZ_SHORT)

fuzz: ## run every fuzz target for FUZZTIME (default 60s; make fuzz FUZZTIME=10m)
	FUZZ_PARALLEL=$(FUZZ_PARALLEL) ./scripts/fuzz.sh $(FUZZTIME)

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

crash-test: ## longer crash-consistency runs: 1000 simulated power losses per package, 25 kill -9s of eddy serve (about 8 min)
	EDDY_CRASH_ITERATIONS=1000 EDDY_CRASH_KILLS=25 $(GO) test -count=1 -timeout 30m -run Crash ./raftgroups/partlog/ ./raftgroups/fsm/ ./cmd/eddy/

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

# --- the appliance (docs/appliance.md) ---
IMAGE_CONFIG ?= firmware-config/examples/qemu.yaml
IMAGE ?= $(BIN)/eddy.img
IMAGE_VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
IMAGE_PKGS := qemu-system-x86 linux-image-amd64 ovmf systemd-boot-efi mtools gdisk dosfstools binutils e2fsprogs kcat
QEMU_IMAGE = qemu-system-x86_64 -accel tcg -machine q35 -m 1024 -nodefaults \
	-drive if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd \
	-drive if=pflash,format=raw,unit=1,file=$(BIN)/eddy-vars.fd -drive file=$(IMAGE),format=raw,if=virtio \
	-netdev user,id=n0,hostfwd=tcp:127.0.0.1:19092-:9092,hostfwd=udp:127.0.0.1:19092-:9092,hostfwd=tcp:127.0.0.1:19644-:9644 \
	-device virtio-net-pci,netdev=n0,romfile= -display none

image-deps: ## install what building and booting images needs (Debian packages) when missing
	@missing=$$(for p in $(IMAGE_PKGS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then echo "installing" $$missing; $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; fi

image: image-deps ## build $(IMAGE) from IMAGE_CONFIG (default: the qemu example), a flashable GPT disk image
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w -X github.com/eddybroker/eddy/cmd/eddy/internal/cli.Version=$(IMAGE_VERSION)' -o $(BIN)/eddy-static ./cmd/eddy
	./$(BIN)/eddy-static image build --config $(IMAGE_CONFIG) -o $(IMAGE)

image-boot: image ## boot $(IMAGE) under qemu, serial console here (Ctrl-A X quits); 127.0.0.1:19092 and :19644 reach it
	cp /usr/share/OVMF/OVMF_VARS_4M.fd $(BIN)/eddy-vars.fd
	$(QEMU_IMAGE) -serial mon:stdio

image-test: image-deps ## boot the image under qemu (TCG, OVMF): SDK and kcat, per-device config, push an update and a broken one (rollback), a three-box cluster
	@mkdir -p bench/results
	set -o pipefail; EDDY_IMAGE_TEST=1 $(GO) test -count=1 -run 'TestImage' -v -timeout 20m ./appliance/boot/ 2>&1 \
	  | tee bench/results/image-test.log | grep -E '_test.go|^(---|ok|FAIL|PASS)'

# arm64 images (docs/appliance.md, "arm64"): built here, not booted by any
# test. Debian's arm64 kernel and systemd-boot-efi are extracted into
# ARM64_ROOT, not installed; the cross objcopy writes arm64 PE files.
ARM64_ROOT ?= $(BIN)/arm64-root
IMAGE_ARM64 ?= $(BIN)/eddy-arm64.img
IMAGE_ARM64_PKGS := binutils-aarch64-linux-gnu mtools gdisk dosfstools e2fsprogs kmod

image-deps-arm64: ## fetch Debian's arm64 kernel and systemd-boot-efi into ARM64_ROOT (bin/arm64-root) and install the build tools, when missing
	@missing=$$(for p in $(IMAGE_ARM64_PKGS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then echo "installing" $$missing; $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; fi
	./scripts/arm64-root.sh $(ARM64_ROOT)

image-arm64: build image-deps-arm64 ## build $(IMAGE_ARM64) for arm64 from IMAGE_CONFIG (a static arm64 eddy as /init)
	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w -X github.com/eddybroker/eddy/cmd/eddy/internal/cli.Version=$(IMAGE_VERSION)' -o $(BIN)/eddy-static-arm64 ./cmd/eddy
	./$(BIN)/eddy image build --arch arm64 --sysroot $(ARM64_ROOT) --init $(BIN)/eddy-static-arm64 --version $(IMAGE_VERSION) --config $(IMAGE_CONFIG) -o $(IMAGE_ARM64)
