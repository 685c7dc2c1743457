# sekisho: make test runs every test (unit, fuzz seeds, e2e with real peers).
GO      ?= go
BIN     ?= bin/sekisho
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

.PHONY: build test bench lint fuzz bench-load

build: ## the binary, static and cgo-free
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w -X main.version=$(VERSION)" -o $(BIN) ./cmd/sekisho

test: ## every test; e2e builds the binary and runs it against real backends on loopback
	$(GO) vet ./...
	@# every benchmark once, so one that no longer runs fails here (the 1M-entry Redis fill takes 15 s)
	$(GO) test -count=1 -run '^$$' -bench . -benchtime 1x -skip Memory1M ./gateway/... ./balancer/... ./waf/...
	$(GO) test -count=1 -timeout 8m ./...

bench: ## hot-path benchmarks: WAF step (GET, 4 KiB form), whole in-process path
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 2s ./waf/ ./gateway/ ./balancer/

lint: ## formatting and vet
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo 'gofmt needed'; exit 1; }
	$(GO) vet ./...

fuzz: ## a short run of every fuzz target
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime 20s ./gateway/config/
	$(GO) test -run '^$$' -fuzz FuzzFramingScan -fuzztime 20s ./gateway/listen/
	$(GO) test -run '^$$' -fuzz FuzzCheckPath -fuzztime 20s ./gateway/
	$(GO) test -run '^$$' -fuzz FuzzReadProxy -fuzztime 20s ./gateway/listen/
	$(GO) test -run '^$$' -fuzz FuzzResolve -fuzztime 20s ./gateway/clientip/
	$(GO) test -run '^$$' -fuzz FuzzReadRequests -fuzztime 20s ./waf/
	$(GO) test -run '^$$' -fuzz FuzzExclusionTarget -fuzztime 20s ./waf/
	$(GO) test -run '^$$' -fuzz FuzzFlattenNDJSON -fuzztime 20s ./waf/
	$(GO) test -run '^$$' -fuzz FuzzPercentDecode -fuzztime 20s ./waf/
	$(GO) test -run '^$$' -fuzz FuzzParseTold -fuzztime 20s ./balancer/sticktable/
	$(GO) test -run '^$$' -fuzz FuzzHoldBody -fuzztime 20s ./gateway/forward/

bench-load: ## side-by-side load benchmark vs HAProxy, nginx(+ModSecurity), Go(+Coraza) on loopback; e2e/bench/README.md (~15 min; e2e/bench/setup.sh first)
	RUNS=$(or $(RUNS),3) DURATION=$(or $(DURATION),5) bash e2e/bench/run.sh
