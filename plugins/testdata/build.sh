#!/bin/sh
# Regenerates the test modules: every *.wat here becomes the *.wasm beside
# it. Needs wat2wasm (Debian package wabt). The .wasm files are committed,
# so tests do not need wabt; run this after editing a .wat.
set -eu
cd "$(dirname "$0")"
if ! command -v wat2wasm >/dev/null 2>&1; then
	echo "build.sh: wat2wasm not found; install it with: apt-get install -y wabt" >&2
	exit 1
fi
for wat in *.wat; do
	wat2wasm -o "${wat%.wat}.wasm" "$wat"
done
