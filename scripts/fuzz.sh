#!/usr/bin/env bash
# Runs every fuzz target in the module for the given time each (default 5s).
# Failing inputs are written to the package's testdata/fuzz, ready to commit.
set -euo pipefail
fuzztime=${1:-5s}
status=0
for pkg in $(go list ./...); do
	dir=$(go list -f '{{.Dir}}' "$pkg")
	ls "$dir"/*_test.go >/dev/null 2>&1 || continue
	targets=$(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go | sed 's/^func //' | sort -u || true)
	for t in $targets; do
		echo "fuzz $pkg $t ($fuzztime)"
		if ! go test -run '^$' -fuzz "^${t}\$" -fuzztime "$fuzztime" "$pkg" >/tmp/eddy-fuzz.log 2>&1; then
			cat /tmp/eddy-fuzz.log
			status=1
		fi
	done
done
exit $status
