# prunner — see README.md. `make run` serves ./pipelines.yml on localhost:9009; `make test` runs
# every test.
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)

.PHONY: build run test test-race lint generate bench clean

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/prunner ./cmd/prunner

run: build
	./bin/prunner

test:
	CGO_ENABLED=0 $(GO) build ./...
	$(GO) vet ./...
	$(GO) test -count=1 ./...

test-race:
	$(GO) test -race -count=1 ./...

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1)
	$(GO) vet ./...

generate:
	$(GO) generate ./...

bench: build
	PRUNNER_BIN=bin/prunner ../shared/bench/run.sh

clean:
	rm -rf bin
