#!/usr/bin/env bash
# scripts/run-tests.sh: the checks behind `make test`, run with the servers already up
# (scripts/with-services.sh sets the KOMBU_TEST_* variables): go vet, the gofmt check, then
# go test -race, then the example modules under examples/. All run even when an earlier one
# fails; go test's output comes last.
# Exit status: go test's when it failed, else 1 when vet or gofmt failed, else 0.
#   PKG        packages to vet and test (default ./...)
#   TESTFLAGS  extra go test flags (e.g. -run Redis -v)
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 2

pkg=${PKG:-./...}
rc=0

echo "--- go vet $pkg"
# shellcheck disable=SC2086 # PKG may hold several patterns
go vet $pkg || rc=1

echo "--- gofmt -l (tracked .go files)"
scripts/check-gofmt.sh || rc=1

# The fault tests (internal/faults, internal/workertest, and each transport's killed-consumer and
# server-restart tests) append their rows to one table of figures here; it is printed last,
# since go test shows a passing package's output only with -v.
export KOMBU_FAULT_TABLE="${KOMBU_SERVICES_DIR:-$PWD/.services}/fault-table.md"
mkdir -p "$(dirname "$KOMBU_FAULT_TABLE")"
rm -f "$KOMBU_FAULT_TABLE"

echo "--- go test -race -count=1 -timeout 40m ${TESTFLAGS:-} $pkg"
# shellcheck disable=SC2086 # TESTFLAGS and PKG are word lists on purpose
go test -race -count=1 -timeout 40m ${TESTFLAGS:-} $pkg
trc=$?

# Example modules of their own (they keep their dependencies, e.g. Prometheus, out of go.mod).
if [[ ${PKG:-./...} == ./... ]]; then # the whole tree (make test exports PKG=./...)
	for mod in examples/*/go.mod; do
		[[ -e $mod ]] || continue
		dir=$(dirname "$mod")
		echo "--- go vet + go test ($dir, a module of its own)"
		(cd "$dir" && go vet ./... && go test -count=1 ./...) || trc=1
	done
fi

if [[ -s $KOMBU_FAULT_TABLE ]]; then
	echo "--- fault tests: every message counted by id (lost = published and acknowledged, never delivered)"
	cat "$KOMBU_FAULT_TABLE"
fi

if ((trc != 0)); then
	exit "$trc"
fi
if ((rc != 0)); then
	echo "FAIL: go vet or gofmt check failed (see above)" >&2
fi
exit "$rc"
