# runner's build, test and tool targets. `make deps` installs everything the
# tests need on a fresh Debian machine and is safe to run again.

SHELL := /bin/bash
GO ?= go
GOBIN_DIR := $(shell $(GO) env GOPATH)/bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

# Pinned tools: protoc plugins matching the committed generated code, and
# the linter.
PROTOC_GEN_GO_VERSION      := v1.36.6
PROTOC_GEN_GO_GRPC_VERSION := v1.3.0
STATICCHECK_VERSION        := v0.8.2
# php-cli and php-mysql run WordPress's own installer for tests and the demo
# (internal/wptest); WordPress itself is downloaded and unpacked, not
# installed, as its package would pull in and start a web server.
# gcc builds libzstd (the blob compressor, internal/repo/zstdenc) through cgo.
DEBIAN_PACKAGES := mariadb-server mariadb-client protobuf-compiler php-cli php-mysql gcc libc6-dev

# Packages whose tests use goroutines across processes or shared state run
# with the race detector.
RACE_PKGS := ./plugins/... ./runner/... ./internal/...

.PHONY: bench-mysql demo-files all build deps test test-unit test-e2e lint proto bench demo fuzz clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/runner ./cmd/runner

deps:
	@missing=""; for p in $(DEBIAN_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@$(GOBIN_DIR)/protoc-gen-go --version 2>/dev/null | grep -q " $(PROTOC_GEN_GO_VERSION)$$" || $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	@$(GOBIN_DIR)/protoc-gen-go-grpc --version 2>/dev/null | grep -q " $(PROTOC_GEN_GO_GRPC_VERSION:v%=%)$$" || $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
	@$(GOBIN_DIR)/staticcheck -version 2>/dev/null | grep -q "$(STATICCHECK_VERSION:v%=%)" || $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	$(GO) mod download
	$(GO) test -count=1 ./internal/wptest  # fetches and unpacks WordPress once

# The README's test command: lint, unit tests (race detector where there
# is concurrency), then the end-to-end tests against the built binary.
test: lint test-unit test-e2e

# The CGO_ENABLED=0 line tests the repository built without cgo, where the pure Go
# zstd encoder stands in for libzstd: it must work the same.
test-unit:
	$(GO) test -count=1 ./hcl/... ./policies/... ./cmd/...
	$(GO) test -count=1 -race $(RACE_PKGS)
	CGO_ENABLED=0 $(GO) test -count=1 ./internal/repo/...
	cd examples/plugins/hello && $(GO) vet ./... && $(GO) test -count=1 ./...

test-e2e: build
	$(GO) test -count=1 -timeout 10m ./e2e/...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^examples/plugins/')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GOBIN_DIR)/staticcheck ./...

proto:
	cd plugins/proto && PATH="$(GOBIN_DIR):$$PATH" protoc --go_out=. --go_opt=paths=source_relative \
	  --go-grpc_out=. --go-grpc_opt=paths=source_relative runner.proto

# Fuzz each parser of untrusted input for FUZZTIME (default 60s each).
FUZZTIME ?= 60s
fuzz:
	$(GO) test ./hcl/ -run '^$$' -fuzz FuzzLoad -fuzztime $(FUZZTIME)
	$(GO) test ./hcl/ -run '^$$' -fuzz FuzzFormat -fuzztime $(FUZZTIME)

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./hcl/ ./policies/
	bench/run
	bench/mysql/run

# Only the database part: mysql source against mariadb-dump and mydumper.
bench-mysql:
	bench/mysql/run

# The README's first command: a real WordPress site on a private MariaDB,
# backed up, damaged, and recovered (examples/wordpress-demo). It starts
# afresh in /tmp/runner-demo each time.
demo: build
	$(GO) run ./examples/wordpress-demo

# The files example: Debian's documentation and two /etc directories backed
# up to /tmp/runner-files-demo, one restored and compared with the original.
FILES_DEMO := bin/runner -C examples/demo
demo-files: build
	$(FILES_DEMO) validate
	test -f /tmp/runner-files-demo/nas/config || $(FILES_DEMO) init target.nas.local
	$(FILES_DEMO) plan
	$(FILES_DEMO) apply
	$(FILES_DEMO) snapshots 'settings["/etc/apt"]'
	rm -rf /tmp/runner-files-demo/restore
	$(FILES_DEMO) restore 'settings["/etc/apt"]' --to /tmp/runner-files-demo/restore
	diff -r /etc/apt /tmp/runner-files-demo/restore/apt && echo "demo: the restored /etc/apt is identical to the original"

clean:
	rm -rf bin
