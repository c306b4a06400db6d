# Runnel: build, test, benchmark, lint.
#   make build   every binary into ./bin
#   make test    the tests of every module in the workspace
#   make bench   the benchmarks, with ratios against their peers
#   make lint    go vet and staticcheck
#   make images  the container images of deploy/compose (static binaries, FROM scratch)
#   make compose-up / compose-down   the docker compose stack of deploy/compose
SHELL := /bin/bash
GO ?= go
BIN := $(CURDIR)/bin
MODULES := $(shell $(GO) work edit -json | sed -n 's/.*"DiskPath": "\(.*\)".*/\1/p')
STATICCHECK_VERSION := v0.8.2
TEST_FLAGS ?= -count=1 -timeout 20m

.PHONY: all build test bench lint fmt dev clean generate check-generate static images compose-up compose-down

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
	cd services/broker && $(GO) run ./cmd/kbench --cluster
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

# Container images: static binaries (no cgo, so they run FROM scratch) in
# $(IMAGE_CONTEXT), the build context of every Dockerfile in deploy/compose.
# bin/runnel goes into each image for its healthcheck (`runnel health`).
# nats-server is built from the Go module services/lagmon requires.
IMAGE_CONTEXT := $(BIN)/images
IMAGE_TAG ?= dev
IMAGES := coordinator broker lagmon nats
STATIC_BUILD := CGO_ENABLED=0 $(GO) build -trimpath -ldflags='-s -w'
COMPOSE_FILE := deploy/compose/docker-compose.yml
# docker compose v2 when the plugin is there, else docker-compose 1.29.
COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)

static:
	@mkdir -p $(IMAGE_CONTEXT)/plugins $(IMAGE_CONTEXT)/rootfs/tmp $(IMAGE_CONTEXT)/rootfs/var/lib/runnel $(IMAGE_CONTEXT)/rootfs/etc/runnel
	chmod 1777 $(IMAGE_CONTEXT)/rootfs/tmp
	$(STATIC_BUILD) -o $(IMAGE_CONTEXT)/ ./cmd/runnel
	cd services/coordinator && $(STATIC_BUILD) -o $(IMAGE_CONTEXT)/ ./cmd/runnel-coordinator
	cd services/broker && $(STATIC_BUILD) -o $(IMAGE_CONTEXT)/ ./cmd/runnel-broker
	cd services/lagmon && $(STATIC_BUILD) -o $(IMAGE_CONTEXT)/ ./cmd/runnel-lagmon
	cd services/lagmon && $(STATIC_BUILD) -o $(IMAGE_CONTEXT)/nats-server github.com/nats-io/nats-server/v2
	cd plugins && $(STATIC_BUILD) -o $(IMAGE_CONTEXT)/plugins/ ./cmd/runnel-storage-file ./cmd/runnel-storage-memory

images: static
	@command -v docker >/dev/null || { echo "make images needs the docker command and a running Docker engine"; exit 1; }
	@set -e; for i in $(IMAGES); do \
		echo "==> image runnel-$$i:$(IMAGE_TAG)"; \
		docker build -q -t runnel-$$i:$(IMAGE_TAG) -f deploy/compose/$$i.Dockerfile $(IMAGE_CONTEXT); \
	done

# The stack of deploy/compose on the host ports of its README section.
compose-up: images
	RUNNEL_TAG=$(IMAGE_TAG) $(COMPOSE) -f $(COMPOSE_FILE) up -d
	@echo "Kafka bootstrap 127.0.0.1:9092,127.0.0.1:9093,127.0.0.1:9094; ZooKeeper 127.0.0.1:2181,127.0.0.1:2182,127.0.0.1:2183; lagmon http://127.0.0.1:8000/"

# Stops the stack; its named volumes stay (add -v by hand to drop the data).
compose-down:
	RUNNEL_TAG=$(IMAGE_TAG) $(COMPOSE) -f $(COMPOSE_FILE) down

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf $(BIN)
