#!/usr/bin/env bash
# scripts/fuzz.sh: run every Fuzz* target in the module, one at a time, for FUZZTIME each
# (default 30s). New crashers land in the package's testdata/fuzz/ as usual.
#   FUZZTIME   duration per target (go test -fuzztime syntax: 30s, 2m, 1000x)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

fuzztime=${FUZZTIME:-30s}
targets=() # "DIR NAME"
while IFS= read -r -d '' f; do
	dir=$(dirname "$f")
	while IFS= read -r name; do
		[[ -n $name ]] && targets+=("$dir $name")
	done < <(sed -nE 's/^func (Fuzz[A-Za-z0-9_]*)\(.*/\1/p' "$f")
done < <(find . \( -name testdata -o -name vendor -o -name node_modules -o -name '.*' ! -name . \) -prune -o -name '*_test.go' -type f -print0 | sort -z)

if ((${#targets[@]} == 0)); then
	echo "fuzz: no Fuzz* targets found"
	exit 0
fi

failed=()
for t in "${targets[@]}"; do
	read -r dir name <<<"$t"
	echo "--- fuzz $dir $name for $fuzztime"
	if ! go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$dir"; then
		failed+=("$dir $name")
	fi
done

if ((${#failed[@]} > 0)); then
	echo "fuzz: failing targets:" >&2
	printf '  %s\n' "${failed[@]}" >&2
	exit 1
fi
echo "fuzz: ${#targets[@]} target(s) ran for $fuzztime each, none failed"
