# FUT conformance harness. `make help` lists the targets; README.md explains the variables.
GO ?= go

# Containers: no registry here, so images are built locally and the reaper (an image to pull) is off; all
# traffic to containers goes through ports mapped on loopback.
export TESTCONTAINERS_RYUK_DISABLED := true
export TESTCONTAINERS_HOST_OVERRIDE := 127.0.0.1

# The run's variables, passed through to the conformance command (unset ones stay unset).
CONFORMANCE_VARS := CONFIG TARGET EXPORT_TARGET REPORT_TARGET FEATURES PROFILE REFSERVER_PROFILE TOKEN TOKEN_B TAGS MAX_WAIT REQUEST_TIMEOUT MAX_BODY MAX_JOBS PARALLEL_DOWNLOADS FHIR_LINES FHIR_SAMPLE REPORT EXPORT_TYPES EXPORT_KICKOFF STRICT GATE \
	REPORTS_DIR RANDOM_SEED GODOG_STOP_ON_FAILURE FORMAT \
	REFSERVER_SYNTHETIC_BYTES REFSERVER_SYNTHETIC_RESOURCES REFSERVER_SYNTHETIC_TYPES REFSERVER_SYNTHETIC_SEED REFSERVER_FILES_PER_TYPE REFSERVER_DATA_DIR \
	IMAGE IMAGE_PORT IMAGE_BASE IMAGE_ENV IMAGE_STARTUP_TIMEOUT KEEP_IMAGE BUILD_REFSERVER_IMAGE \
	TOKEN_URL CLIENT_ID CLIENT_SECRET SCOPE CLIENT_ID_B CLIENT_SECRET_B CA_CERT CLIENT_CERT CLIENT_KEY \
	PRIVATE_KEY KEY_ID PRIVATE_KEY_B KEY_ID_B \
	TOKEN_FILE TOKEN_B_FILE CLIENT_SECRET_FILE CLIENT_SECRET_B_FILE \
	DOWNLOAD_WAIT MAX_FILES TRUSTED_ORIGINS
export $(CONFORMANCE_VARS)

ADDR ?= 127.0.0.1:8080

.PHONY: help conformance conformance-container refserver image test test-short lint bench bench-load bench-scale mutation fuzz load interop

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | sort

conformance: ## run every feature: against the embedded reference server, TARGET=<FHIR base URL> or IMAGE=<local image> (IMAGE_PORT, IMAGE_BASE, IMAGE_ENV); secrets from the environment (export TOKEN TOKEN_B) or TOKEN_FILE, TOKEN_B_FILE
	$(GO) run ./cmd/conformance

conformance-container: ## build the reference server image (refserver/Dockerfile), start it with testcontainers-go, run every feature against it, remove both
	BUILD_REFSERVER_IMAGE=1 $(GO) run ./cmd/conformance

refserver: ## run the reference server in the foreground at http://$(ADDR)/fhir (demo tokens printed)
	$(GO) run ./cmd/refserver -addr $(ADDR)

# The harness image (cmd/conformance/Dockerfile): FROM scratch, so the binary is static and the CA certificates
# come from this machine (CA_BUNDLE: Debian/Ubuntu/Alpine's path; Fedora/RHEL: /etc/pki/tls/certs/ca-bundle.crt).
HARNESS_IMAGE ?= fut-conformance:latest
CA_BUNDLE ?= /etc/ssl/certs/ca-certificates.crt
DOCKER ?= docker

image: ## build the harness as a FROM-scratch image HARNESS_IMAGE (default fut-conformance:latest); nothing is pulled
	@set -e; ctx=$$(mktemp -d); trap 'rm -rf "$$ctx"' EXIT; \
	arch=$$($(DOCKER) version --format '{{.Server.Arch}}'); \
	CGO_ENABLED=0 GOOS=linux GOARCH=$$arch $(GO) build -trimpath -ldflags='-s -w' -o "$$ctx/conformance" ./cmd/conformance; \
	cp "$(CA_BUNDLE)" "$$ctx/ca-certificates.crt"; cp cmd/conformance/Dockerfile "$$ctx/"; \
	$(DOCKER) build --quiet --tag "$(HARNESS_IMAGE)" "$$ctx" >/dev/null; \
	echo "image $(HARNESS_IMAGE) built: docker run --rm --network host -e TARGET -e TOKEN -e TOKEN_B -v \"\$$PWD/reports:/reports\" $(HARNESS_IMAGE)"

mutation: ## kill matrix: the suite against the conformant refserver and every injected fault; writes reports/mutation.md and .json
	$(GO) run ./cmd/mutation -out reports

# go test's default of 10 minutes per package is a hang guard too tight for the harness package under -race on
# a shared 2-core machine (535 s measured; past 10 minutes beside busy loops); CI's own limit is 90 minutes.
TEST_TIMEOUT ?= 30m
test: ## unit tests, the suite embedded and through TARGET against a refserver process, and the interop module, all under -race
	$(GO) vet ./...
	@unformatted=$$(gofmt -l .); if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...
	cd interop && $(GO) vet ./... && $(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...

interop: ## real Bulk Data clients (Google's bulk_fhir_tools) end to end against the reference server (nested module interop/)
	cd interop && $(GO) vet ./... && $(GO) test -race -count=1 -v ./...

test-short: ## the unit tests only
	$(GO) test -short -count=1 ./...

lint: ## gofmt, go vet and the Gherkin lint (features/lint_test.go)
	@unformatted=$$(gofmt -l .); if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) test -count=1 -run 'GherkinLint|EveryRequirement|ProfilesTable' ./features

bench: ## benchmarks of the hot paths (poll answers, report status, schema validation, Bundle decoding, output files)
	$(GO) test -run='^$$' -bench=. -skip='^BenchmarkLoad' -benchmem ./check ./fixtures ./refserver

BENCH_LOAD_COUNT ?= 3
bench-load: ## the reference server's fairness: 30,000 live jobs against 10, user A's poll while user B floods (ratios first; BENCH_LOAD_COUNT runs)
	$(GO) test -run='^$$' -bench='^BenchmarkLoad' -benchtime=1x -count=$(BENCH_LOAD_COUNT) ./refserver

bench-scale: ## issue 13's figures end to end against reference servers it starts (minutes; not part of make test): one line per figure, the ratio first
	$(GO) run ./cmd/benchscale

# Fuzz targets, as <package>:<FuzzName>; `go test` replays their committed corpora (testdata/fuzz/<FuzzName>/).
FUZZTIME ?= 20s
FUZZ_TARGETS := ./check:FuzzParseRetryAfter ./check:FuzzDecodeReportJobs ./check:FuzzReadOutputFile ./check:FuzzValidJSON \
	./check:FuzzCheckManifest ./check:FuzzCheckOperationOutcome ./check:FuzzJSONIndexAgreesWithEncodingJSON \
	./check:FuzzFHIRDecoderDiffersFromTheLibraryOnlyAtItsGaps ./check:FuzzCheckReportArchive ./fixtures:FuzzValidate \
	./fixtures:FuzzItemByItem ./refserver:FuzzHandler

fuzz: ## run every fuzz target in turn for FUZZTIME each (default 20s); new crashers land in <pkg>/testdata/fuzz
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t#*:}; echo "fuzz $$pkg $$name for $(FUZZTIME)"; \
		$(GO) test -run='^$$' -fuzz="^$$name\$$" -fuzztime=$(FUZZTIME) $$pkg; \
	done

load: ## the load tests alone, under -race: concurrent kick-off, poll, cancel and download against the refserver (manual clock, then the DELETE/poll race on the real clock)
	$(GO) test -race -count=1 -v -run '^(TestLoad|TestRaceDeletePoll)' ./refserver
