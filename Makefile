# Runnel: build, test, benchmark, lint.
#   make build   every binary into ./bin
#   make test    the tests of every module in the workspace
#   make bench   the benchmarks, with ratios against their peers
#   make lint    go vet and staticcheck
SHELL := /bin/bash
GO ?= go
BIN := $(CURDIR)/bin
MODULES := $(shell $(GO) work edit -json | sed -n 's/.*"DiskPath": "\(.*\)".*/\1/p')
STATICCHECK_VERSION := v0.8.2
TEST_FLAGS ?= -count=1 -timeout 20m

.PHONY: all build test bench lint fmt dev clean

# The local platform in one process: the coordinator on 127.0.0.1:2181 and
# broker 1 on 127.0.0.1:9092, data in ./runnel-data (see `bin/runnel dev --help`).
dev: build
	$(BIN)/runnel dev

all: build

build:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./cmd/runnel
	cd services/coordinator && $(GO) build -o $(BIN)/ ./cmd/runnel-coordinator
	cd services/broker && $(GO) build -o $(BIN)/ ./cmd/runnel-broker
	cd services/lagmon && $(GO) build -o $(BIN)/ ./cmd/runnel-lagmon
	@mkdir -p $(BIN)/plugins
	cd plugins && $(GO) build -o $(BIN)/plugins/ ./cmd/runnel-storage-file ./cmd/runnel-storage-memory

test: build
	@set -e; for m in $(MODULES); do \
		echo "==> go test $$m"; \
		(cd $$m && $(GO) test $(TEST_FLAGS) ./...); \
	done

bench: build
	cd services/coordinator && $(GO) run ./cmd/zkbench --compare
	cd services/coordinator && $(GO) run ./cmd/zkbench --compare --ensemble 3
	cd services/broker && $(GO) run ./cmd/kbench
	cd services/broker && $(GO) run ./cmd/kbench --storage-plugin $(BIN)/plugins/runnel-storage-file
	cd services/broker && $(GO) run ./cmd/kbench --storage-plugin $(BIN)/plugins/runnel-storage-memory

lint:
	@set -e; for m in $(MODULES); do \
		echo "==> vet $$m"; (cd $$m && $(GO) vet ./...); \
	done
	@command -v staticcheck >/dev/null || $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	@set -e; for m in $(MODULES); do \
		echo "==> staticcheck $$m"; (cd $$m && $$($(GO) env GOPATH)/bin/staticcheck ./...); \
	done

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf $(BIN)
