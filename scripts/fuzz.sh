#!/usr/bin/env bash
# Runs every fuzz target in the module for the given time each (default
# 5s), FUZZ_PARALLEL workers at a time (default 2). The targets are found,
# not listed: every `func FuzzXxx` in a package's tests is one, so a new
# target is fuzzed from the day it is written (docs/reliability.md,
# "Fuzzing", lists them). A failing input is written to the package's
# testdata/fuzz/FuzzXxx, ready to commit as a regression test.
#
# FUZZ_PKGS limits the run to some packages (default ./...).
set -euo pipefail
fuzztime=${1:-5s}
parallel=${FUZZ_PARALLEL:-2}
log=$(mktemp -t eddy-fuzz.XXXXXX)
trap 'rm -f "$log"' EXIT
status=0
start=$SECONDS
for dir in $(go list -f '{{.Dir}}' ${FUZZ_PKGS:-./...}); do
	ls "$dir"/*_test.go >/dev/null 2>&1 || continue
	targets=$(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go | sed 's/^func //' | sort -u || true)
	[ -n "$targets" ] || continue
	pkg=$(go list "$dir")
	for t in $targets; do
		t0=$SECONDS
		# Minimizing each new coverage-expanding input can take most of a
		# short run; failing inputs are still minimized a little.
		if go test -run '^$' -fuzz "^${t}\$" -fuzztime "$fuzztime" -fuzzminimizetime 200x \
			-parallel "$parallel" "$pkg" >"$log" 2>&1; then
			result=ok
		elif ! grep -q 'Failing input written\|failure while testing seed corpus' "$log" &&
			grep -qx '    context deadline exceeded' "$log"; then
			# go1.26's fuzz coordinator can report its own -fuzztime
			# deadline as a failure (golang/go#75804, fixed in go1.27):
			# no input failed, nothing was written.
			result=ok
		else
			result=FAIL
			status=1
		fi
		execs=$(grep -o 'execs: [0-9]*' "$log" | tail -1 | cut -d' ' -f2 || true)
		printf 'fuzz %-4s %-55s %-28s %4ss %10s execs\n' "$result" "$pkg" "$t" "$((SECONDS - t0))" "${execs:-0}"
		[ "$result" = ok ] || cat "$log"
	done
done
echo "fuzzing took $((SECONDS - start))s"
exit $status
