#!/usr/bin/env bash
# scripts/check-gofmt.sh: fail, listing the files, when a tracked .go file is not gofmt-formatted.
# Files under testdata/ and vendor/ are left out, as the go command leaves them out.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

files=()
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	while IFS= read -r -d '' f; do
		[[ -f $f ]] && files+=("$f") # skip tracked files deleted in the work tree
	done < <(git ls-files -z -- '*.go' ':!:testdata/*' ':!:*/testdata/*' ':!:vendor/*')
else
	while IFS= read -r -d '' f; do
		files+=("$f")
	done < <(find . \( -name testdata -o -name vendor -o -name '.*' ! -name . \) -prune -o -name '*.go' -type f -print0)
fi

((${#files[@]} > 0)) || exit 0
out=$(gofmt -l "${files[@]}")
if [[ -n $out ]]; then
	echo "gofmt: these files need formatting (run gofmt -w on them):" >&2
	echo "$out" >&2
	exit 1
fi
