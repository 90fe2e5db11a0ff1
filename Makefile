# prunner — see README.md. `make run` serves ./pipelines.yml on localhost:9009; `make test` runs
# every test.
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)

.PHONY: build run test test-race lint generate check-generated bench bench-cluster bench-shared clean

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

lint: check-generated
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1)
	$(GO) vet ./...
	@$(GO) mod tidy -diff >/dev/null 2>&1 || { $(GO) mod tidy -diff; echo "go.mod/go.sum: run 'go mod tidy' and commit the result"; exit 1; }

# generate: the templ components' *_templ.go (committed), with the templ pinned in go.mod's tool
# directive. Run from the module root: the generated code names its files relative to it.
generate:
	$(GO) tool templ generate
	$(GO) generate ./...

# check-generated fails when web/templates/*_templ.go do not match their .templ files.
check-generated:
	@before="$$(cat web/templates/*_templ.go | sha256sum)"; \
	$(GO) tool templ generate >/dev/null 2>&1 || { $(GO) tool templ generate; exit 1; }; \
	test "$$before" = "$$(cat web/templates/*_templ.go | sha256sum)" || \
	  { echo "web/templates: the generated *_templ.go files were stale (now regenerated; commit them)"; exit 1; }

# bench: prunner's own benchmark (bench/, Go) against bin/prunner: every scenario of
# ../shared/docs/performance.md, one table with pass/miss. BENCH_ARGS="--quick" for a smoke run,
# "--out results.jsonl" for JSON lines, "--pprof DIR" for server profiles.
bench: build
	$(GO) run ./bench --bin $(CURDIR)/bin/prunner $(BENCH_ARGS)

# bench-cluster: the cluster rows (issue 12): one node and three nodes on one PostgreSQL
# database (latency, throughput, sleep-bound capacity). PG_URL names a server where the bench may
# create databases (it drops them at the end); BENCH_ARGS as for bench.
PG_URL ?= postgres://postgres@127.0.0.1:5432/test
bench-cluster: build
	$(GO) run ./bench --bin $(CURDIR)/bin/prunner --only cluster --postgres $(PG_URL) $(BENCH_ARGS)

# bench-shared: the black-box harness in ../shared/bench (python) against the same binary.
bench-shared: build
	PRUNNER_BIN=$(CURDIR)/bin/prunner ../shared/bench/run.sh

clean:
	rm -rf bin
