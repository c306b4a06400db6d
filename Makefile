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

.PHONY: all build test bench lint fmt dev clean generate check-generate

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
	cd plugins && $(GO) build -o $(BIN)/plugins/ ./cmd/runnel-serde-json ./cmd/runnel-serde-tsv ./cmd/runnel-serde-avro
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
	cd services/broker && $(GO) run ./cmd/kbench --groups
	cd services/broker && $(GO) run ./cmd/kbench --storage-plugin $(BIN)/plugins/runnel-storage-file
	cd services/broker && $(GO) run ./cmd/kbench --storage-plugin $(BIN)/plugins/runnel-storage-memory
	cd plugins && $(GO) run ./cmd/serdebench --plugins $(BIN)/plugins
	cd sdk && $(GO) run ./internal/cmd/sdkbench
	cd services/lagmon && $(GO) run ./cmd/lagbench

lint:
	@set -e; for m in $(MODULES); do \
		echo "==> vet $$m"; (cd $$m && $(GO) vet ./...); \
	done
	@command -v staticcheck >/dev/null || $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	@set -e; for m in $(MODULES); do \
		echo "==> staticcheck $$m"; (cd $$m && $$($(GO) env GOPATH)/bin/staticcheck ./...); \
	done

# Generated code (committed): the plugin protocols' gRPC stubs. Needs protoc
# (apt-get install -y protobuf-compiler); the Go plugins are installed at
# the versions the committed code was made with.
PROTOC_GEN_GO_VERSION := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.5.1
GOBIN_DIR := $(shell $(GO) env GOPATH)/bin
SERDE_PROTO_DIR := sdk/serde/serdev1
STORAGE_PROTO_DIR := sdk/storage/storagev1

generate:
	@command -v protoc >/dev/null || { echo "protoc is missing: apt-get install -y protobuf-compiler"; exit 1; }
	@test -x $(GOBIN_DIR)/protoc-gen-go || $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	@test -x $(GOBIN_DIR)/protoc-gen-go-grpc || $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
	PATH="$(GOBIN_DIR):$$PATH" protoc --proto_path=$(SERDE_PROTO_DIR) \
		--go_out=$(SERDE_PROTO_DIR) --go_opt=paths=source_relative \
		--go-grpc_out=$(SERDE_PROTO_DIR) --go-grpc_opt=paths=source_relative \
		$(SERDE_PROTO_DIR)/serde.proto
	PATH="$(GOBIN_DIR):$$PATH" protoc --proto_path=$(STORAGE_PROTO_DIR) \
		--go_out=$(STORAGE_PROTO_DIR) --go_opt=paths=source_relative \
		--go-grpc_out=$(STORAGE_PROTO_DIR) --go-grpc_opt=paths=source_relative \
		$(STORAGE_PROTO_DIR)/storage.proto

# Regenerates and fails when the committed generated code differs.
check-generate: generate
	@git diff --exit-code -- '$(SERDE_PROTO_DIR)/*.pb.go' '$(STORAGE_PROTO_DIR)/*.pb.go' || { echo "generated code is stale: run make generate and commit"; exit 1; }

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf $(BIN)
