# kombu-go developer tasks. `make` or `make list` prints the targets.
#
# Real servers (Redis, Redis Sentinel, RabbitMQ, a 3-node RabbitMQ cluster and a Sentinel
# failover set for the fault tests, and Debian's Python kombu for wire tests) are
# installed and started by scripts/services.sh on free loopback ports; their URLs land in
# .services/env as KOMBU_TEST_* variables. Tests that need a server skip when its variable is
# unset, except in CI (CI=true or CI=1), where they fail; outside CI the redis tests run on an
# in-process miniredis instead (transport/redis/testserver_test.go).
#
# Variables: PKG (default ./...), TESTFLAGS (extra go test flags), FUZZTIME (default 30s),
# ARGS (arguments for `make demo`), CI (passed through from the environment).

SHELL := /bin/bash
.DEFAULT_GOAL := list

GO        ?= go
PKG       ?= ./...
TESTFLAGS ?=
FUZZTIME  ?= 30s
BENCHTIME ?= 1s
BENCHCOUNT ?= 3
ARGS      ?=

# Pass CI-ness through to the tests (internal/testenv reads it), also when given as `make test
# CI=true`; leave it unset when it is unset. The scripts read PKG, TESTFLAGS and FUZZTIME.
ifdef CI
export CI
endif
export PKG TESTFLAGS FUZZTIME

.PHONY: list help test faults test-short lint vet fmt-check fuzz bench demo \
	services-up services-down services-status services-env

list: ## Show the targets with their descriptions
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*## "}; {printf "  %-16s %s\n", $$1, $$2}'

help: list ## Same as list

test: ## Install+start the servers, go vet, gofmt check, go test -race (all), always stop the servers
	@scripts/with-services.sh scripts/run-tests.sh

faults: ## Start the servers, run only the fault tests (internal/faults and internal/workertest, -race; make test runs them too), print their table of figures
	@scripts/with-services.sh env PKG="./internal/faults/... ./internal/workertest/..." scripts/run-tests.sh

test-short: ## go test -short -race without starting servers (server tests skip outside CI, redis ones use miniredis)
	$(GO) test -short -race $(TESTFLAGS) $(PKG)

lint: ## gofmt check + go vet (both run; fails if either fails)
	@rc=0; scripts/check-gofmt.sh || rc=1; $(GO) vet $(PKG) || rc=1; exit $$rc

vet: ## go vet
	$(GO) vet $(PKG)

fmt-check: ## Fail when a tracked .go file is not gofmt-formatted
	@scripts/check-gofmt.sh

fuzz: ## Run every Fuzz* target for FUZZTIME (default 30s) each
	@scripts/fuzz.sh

bench: ## Start the servers, run every benchmark, print the table with the tracked ratios (raw output: .services/bench.txt)
	@scripts/with-services.sh bash -o pipefail -c \
		'$(GO) test -run "^$$" -bench . -benchmem -benchtime=$(BENCHTIME) -count=$(BENCHCOUNT) $(PKG) | tee .services/bench.txt | grep -E "^(pkg:|Benchmark|ok|FAIL|---)"' && \
		$(GO) run ./cmd/kombu-benchtable < .services/bench.txt

demo: ## go run ./cmd/kombu-demo $(ARGS)
	$(GO) run ./cmd/kombu-demo $(ARGS)

services-up: ## Install (if missing) and start the test servers; then: . .services/env
	@scripts/services.sh up

services-down: ## Stop the test servers started by services-up
	@scripts/services.sh down

services-status: ## Show which test servers are running
	@scripts/services.sh status

services-env: ## Print the KOMBU_TEST_* export lines (eval "$(make -s services-env)")
	@scripts/services.sh env
