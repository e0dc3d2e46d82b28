#!/usr/bin/env bash
# Builds every example plugin to plugins/examples/<name>/<name>.wasm: a
# wasip1 reactor built by standard Go with the pdk (see plugins/pdk).
# Usage: plugins/examples/build.sh [name...]   (default: all of them)
# Extra go build flags can come through GOFLAGS.
set -euo pipefail

cd "$(dirname "$0")"
if [ "$#" -eq 0 ]; then
	set -- $(GOOS=wasip1 GOARCH=wasm go list -f '{{if eq .Name "main"}}{{.Dir}}{{end}}' ./...)
fi
for dir in "$@"; do
	name=$(basename "$dir")
	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -o "$name/$name.wasm" "./$name"
	echo "built $(pwd)/$name/$name.wasm ($(wc -c <"$name/$name.wasm") bytes)"
done
