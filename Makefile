# cdw developer targets. `make test` is the one command that runs every test.
GO ?= go
# The per-package timeout leaves room for a busy machine: pipelines/reliability
# took 22 min of its old 25 while six other engineers built and tested.
GOFLAGS_TEST ?= -count=1 -timeout 50m
export PATH := $(shell $(GO) env GOPATH)/bin:$(PATH)

.PHONY: build test deps vet demo bench

build:
	$(GO) build -o cdw ./cmd/cdw

deps:
	bash .ci/deps

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1)
	$(GO) vet ./...

# Installs PostgreSQL, Chromium and mailpit when missing, then runs every test
# against those real servers.
test: deps vet
	$(GO) test $(GOFLAGS_TEST) ./...

demo:
	$(GO) run ./cmd/cdw demo

bench:
	$(GO) test -run '^$$' -bench . -benchtime 1x ./...
