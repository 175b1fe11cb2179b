#!/usr/bin/env bash
# Writes every call-flow scenario of bench/gen into DIR: NAME.pcap and its
# manifest NAME.json (see docs/scenarios.md). Scenarios that need G.729 are
# skipped, with a note, in a build without bcg729.
#
#   scripts/scenarios.sh DIR [SEED]
set -euo pipefail
dir=${1:?usage: scripts/scenarios.sh DIR [SEED]}
seed=${2:-1}
cd "$(dirname "$0")/.."
mkdir -p "$dir"
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/gencalls" ./bench/cmd/gencalls
names=$("$bin/gencalls" --help | awk '/^Scenarios/ {on=1; next} on && /^  [a-z]/ {print $1} on && /^$/ {on=0}')
for name in $names; do
	if ! "$bin/gencalls" --scenario "$name" --seed "$seed" --quiet --out "$dir/$name.pcap" >/dev/null 2>"$bin/err"; then
		if grep -q "not available" "$bin/err"; then
			echo "skipped $name: $(cat "$bin/err")" >&2
			continue
		fi
		cat "$bin/err" >&2
		exit 1
	fi
	echo "wrote $dir/$name.pcap $dir/$name.json"
done
