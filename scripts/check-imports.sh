#!/usr/bin/env bash
# Enforces the import direction of design.md §3:
#   cmd → appliance → (appliance/broker → raftgroups, plugins, transport)
#   sdk imports transport, never appliance, raftgroups or plugins (only sdk/wasmpart may import plugins)
#   raftgroups never imports plugins or appliance; transport imports no other eddy package
#   partlog, meta, plugins/abi and nodecfg are leaves (no eddy imports)
set -euo pipefail
mod=$(go list -m)
fail=0

# deps PKG: the eddy packages PKG imports, directly or not.
deps() { go list -deps "$1" 2>/dev/null | grep "^$mod/" | grep -vx "$1" || true; }

forbid() { # forbid PKG_PATTERN REGEX WHY
	local pkgs
	pkgs=$(go list "$mod/$1" 2>/dev/null || true)
	for p in $pkgs; do
		bad=$(deps "$p" | grep -E "$2" || true)
		if [ -n "$bad" ]; then
			echo "import direction: $p must not import ($3):"
			echo "$bad" | sed 's/^/    /'
			fail=1
		fi
	done
}

forbid 'sdk/...'            "^$mod/(appliance|raftgroups|cmd)(/|$)" "the SDK never reaches into the server"
forbid 'raftgroups/...'     "^$mod/(plugins|appliance|cmd|sdk)(/|$)" "raftgroups sits below the broker"
forbid 'transport/...'      "^$mod/" "transport is self-contained"
forbid 'raftgroups/partlog' "^$mod/" "partlog is a leaf"
forbid 'raftgroups/meta'    "^$mod/" "meta is a leaf"
forbid 'appliance/nodecfg'  "^$mod/" "nodecfg is a leaf"
forbid 'plugins/abi'        "^$mod/" "plugins/abi is a leaf"
forbid 'appliance/...'      "^$mod/cmd(/|$)" "cmd sits on top"

# Only sdk/wasmpart may import plugins from the SDK side.
for p in $(go list "$mod/sdk/..."); do
	case "$p" in "$mod/sdk/wasmpart"*) continue ;; esac
	bad=$(deps "$p" | grep -E "^$mod/plugins(/|$)" || true)
	if [ -n "$bad" ]; then echo "import direction: $p must not import plugins (only sdk/wasmpart may)"; fail=1; fi
done

# The appliance binary must not carry the benchmark peer (NATS).
if go list -deps "$mod/cmd/eddy" | grep -q '^github.com/nats-io/'; then
	echo "import direction: cmd/eddy must not link NATS (keep the peer out of the appliance)"
	fail=1
fi

[ "$fail" -eq 0 ] && echo "import direction: ok"
exit "$fail"
