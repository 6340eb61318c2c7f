# spi — two commands for a new machine: `make run` and `make test`.
# Everything the tests need is installed from this repository's own files: Go modules (go.mod,
# e2e/go.mod, tools/go.mod), npm packages (e2e/package-lock.json) and Debian packages
# (e2e/scripts/apt-install.sh, called from deps).

GO        ?= go
SPID_ARGS ?=
FUZZTIME  ?= 5m
SOAK_SCALE ?= 20
BIN       := bin
LINT      := $(BIN)/golangci-lint
NPM_STAMP := e2e/node_modules/.spi-installed

.PHONY: all build run shell walkpeers test unit e2e lint fmt deps fuzz bench soak clean

all: build

## build: compile spid and spictl into bin/
build:
	$(GO) build -o $(BIN)/ ./cmd/spid ./cmd/spictl

## run: build and start spid with embedded defaults (data in ./data, data plane on
## 127.0.0.1:27017, Admin API on 127.0.0.1:8080)
run: build
	exec ./$(BIN)/spid $(SPID_ARGS)

## shell: open the pinned mongosh (installed by npm ci if needed) on the running spid as the
## first-start admin user; SPI_DATA_DIR selects the data directory (default ./data)
shell: $(NPM_STAMP)
	@node e2e/scripts/shell.js $${SPI_DATA_DIR:-data}

## walkpeers: the Kafka broker (kfake, 127.0.0.1:9092, SASL SCRAM-SHA-256 user $$KAFKA_USER, default
## stocks) and MongoDB stand-in (embedded FerretDB, 127.0.0.1:27018) of docs/security-walkthrough.md,
## until Ctrl-C; WALKPEERS_ARGS passes flags (-kafka, -mongodb, -dir)
walkpeers: $(NPM_STAMP)
	cd e2e && exec $(GO) run ./cmd/walkpeers $(WALKPEERS_ARGS)

## test: install what the tests need, then lint, unit tests (race detector) and end-to-end tests
test: deps lint unit e2e

unit:
	$(GO) test -race -count=1 ./...

e2e: $(NPM_STAMP)
	cd e2e && $(GO) test -count=1 -timeout 15m ./...

## soak: the data-plane attacks of e2e/limits_test.go at SOAK_SCALE (default 20) times the size
## that `make test` runs them at
soak: $(NPM_STAMP)
	cd e2e && SPI_SOAK=$(SOAK_SCALE) $(GO) test -count=1 -timeout 60m -v -run 'TestPreLoginAttacks' .

## deps: Go modules, the pinned linter, mongosh, the Node driver's compressors and
## mongodb-data-service, curl, openssl, jq, kcat (Debian's kafkacat), and Debian's pymongo with its snappy and zstd modules
deps: $(NPM_STAMP) $(LINT)
	$(GO) mod download
	cd e2e && $(GO) mod download
	@command -v curl >/dev/null || bash e2e/scripts/apt-install.sh curl
	@command -v openssl >/dev/null || bash e2e/scripts/apt-install.sh openssl
	@command -v jq >/dev/null || bash e2e/scripts/apt-install.sh jq
	@command -v kcat >/dev/null || command -v kafkacat >/dev/null || bash e2e/scripts/apt-install.sh kafkacat
	@/usr/bin/python3 -c 'import pymongo, snappy, zstandard' 2>/dev/null || \
	  bash e2e/scripts/apt-install.sh python3-pymongo python3-snappy python3-zstandard

$(NPM_STAMP): e2e/package.json e2e/package-lock.json e2e/scripts/build-node-zstd.sh e2e/scripts/apt-install.sh
	cd e2e && npm ci --no-audit --no-fund
	cd e2e && bash scripts/build-node-zstd.sh
	touch $@

$(LINT): tools/go.mod tools/go.sum
	cd tools && $(GO) build -o ../$(LINT) github.com/golangci/golangci-lint/v2/cmd/golangci-lint

## lint: gofmt, go vet and golangci-lint (config in .golangci.yml) over both modules
lint: $(LINT)
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './e2e/node_modules/*')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	cd e2e && $(GO) vet ./...
	$(LINT) run ./...
	cd e2e && ../$(LINT) run --config ../.golangci.yml ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

## fuzz: run every fuzz target for FUZZTIME each (default 5m). A run that fails without writing
## a failing input to testdata/fuzz is Go's fuzz coordinator racing its own -fuzztime deadline
## ("context deadline exceeded", golang/go#75804, fixed in Go 1.27), not a finding: it is run
## again once.
FUZZ_TARGETS := wire:FuzzReadMessage bsoncheck:FuzzValidate wire:FuzzSnappy wire:FuzzZlib wire:FuzzZstd \
	pipeline:FuzzParse pipeline:FuzzPush pipeline/expr:FuzzCompileEval pipeline/match:FuzzCompileMatch \
	pipeline/value:FuzzIter pipeline/pcre:FuzzRegex ejson:FuzzAppendBSON ejson:FuzzAppendJSON
fuzz:
	@for pt in $(FUZZ_TARGETS); do \
	  pkg=$${pt%%:*}; t=$${pt##*:}; \
	  echo "== $$pkg $$t ($(FUZZTIME))"; \
	  before=$$(ls ./$$pkg/testdata/fuzz/$$t 2>/dev/null | wc -l); \
	  $(GO) test ./$$pkg -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) && continue; \
	  if [ "$$(ls ./$$pkg/testdata/fuzz/$$t 2>/dev/null | wc -l)" != "$$before" ]; then exit 1; fi; \
	  echo "== $$pkg $$t: failed with no failing input (golang/go#75804); once more"; \
	  $(GO) test ./$$pkg -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) || exit 1; \
	done

## bench: ping round trips per second, spid against a reference server, measured in one run;
## then the pipeline engine's documents per second on one core beside a bson.D baseline; then
## the processor runtime's throughput beside the bare engine, its latency at 10,000 docs/s and
## its memory per processor; then the JSON/Extended JSON transcoder (ejson) beside the driver's
## bson.UnmarshalExtJSON and bson.MarshalExtJSON on the same ~1 KB payloads; then Kafka topic to
## topic, spid beside a kafka-go copy loop
bench: build
	cd e2e && $(GO) run ./cmd/spibench -spid ../$(BIN)/spid
	cd e2e && $(GO) run ./cmd/kafkabench -spid ../$(BIN)/spid
	cd e2e && $(GO) run ./cmd/mergebench -spid ../$(BIN)/spid
	SPI_BENCH=1 GOMAXPROCS=1 $(GO) test -run TestThroughputReport -count=1 -v ./pipeline/ | grep -v '^=== RUN'
	SPI_BENCH=1 $(GO) test -run TestRuntimeReport -count=1 -timeout 20m -v ./processor/ | grep -v '^=== RUN'
	SPI_BENCH=1 GOMAXPROCS=1 $(GO) test -run TestTranscoderReport -count=1 -v ./ejson/ | grep -v '^=== RUN'

clean:
	rm -rf $(BIN) $(NPM_STAMP)
