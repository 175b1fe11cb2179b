#!/usr/bin/env bash
# Live capture benchmark (make bench-live, as root).
#
# Two tcpreplay processes replay a generator capture at top speed into one
# end of a veth pair; on the other end, in the same run and so at the same
# rate, silentmon's capture (smserver --interface, or bench/live/capturecount
# which does the same decode and stream tracking without the relay) and
# `tcpdump -w /dev/null` both capture. For each it prints packets, kernel
# drops and CPU seconds (user + system) per million packets, then the
# ratio silentmon / tcpdump.
#
# Environment: CALLS (1000), DURATION (5s), LOOPS (4, per tcpreplay
# process), CAPTURER (smserver, the default, or capturecount), WORKERS (1),
# BIN (bin).
set -euo pipefail

CALLS=${CALLS:-1000}
DURATION=${DURATION:-5s}
LOOPS=${LOOPS:-4}
WORKERS=${WORKERS:-1}
BIN=${BIN:-bin}
CAPTURER=${CAPTURER:-smserver}

if [ "$(id -u)" != 0 ]; then
	echo "bench-live needs root (network namespaces, AF_PACKET)." >&2
	exit 2
fi
for tool in tcpreplay tcpdump ip go curl bc; do
	command -v "$tool" >/dev/null || { echo "bench-live needs $tool on PATH (make deps installs it)." >&2; exit 2; }
done

work=$(mktemp -d)
id=$(head -c4 /dev/urandom | od -An -tx1 | tr -d ' \n')
nsT=smlvT$id nsR=smlvR$id ifT=slt$id ifR=slr$id
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	ip netns del "$nsT" 2>/dev/null || true
	ip netns del "$nsR" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/gencalls" ./bench/cmd/gencalls
"$work/gencalls" --calls "$CALLS" --duration "$DURATION" --vlan 85 --priority 5 -q --out "$work/calls.pcap" >/dev/null

ip netns add "$nsT"
ip netns add "$nsR"
ip link add "$ifT" netns "$nsT" type veth peer name "$ifR" netns "$nsR"
ip -n "$nsT" link set "$ifT" up
ip -n "$nsR" link set "$ifR" up
ip -n "$nsR" link set lo up # smserver's metrics on 127.0.0.1:9228 inside the namespace
for ns in "$nsT" "$nsR"; do ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1; done

# cpu_ticks PID: user + system time of a process, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

case "$CAPTURER" in
smserver)
	[ -x "$BIN/smserver" ] || { echo "bench-live: $BIN/smserver is missing (make build)." >&2; exit 2; }
	ip netns exec "$nsR" "$BIN/smserver" --interface "$ifR" --workers "$WORKERS" --insecure --cluster=false \
		--listen 127.0.0.1:0 --metrics-listen 127.0.0.1:9228 --debug-listen 127.0.0.1:9238 >"$work/sm.out" 2>&1 &
	;;
capturecount)
	go build -o "$work/capturecount" ./bench/live/capturecount
	ip netns exec "$nsR" "$work/capturecount" -i "$ifR" -workers "$WORKERS" >"$work/sm.out" 2>&1 &
	;;
*) echo "CAPTURER must be capturecount or smserver, not $CAPTURER." >&2; exit 2 ;;
esac
smpid=$!
pids+=("$smpid")
ip netns exec "$nsR" tcpdump -q -n -i "$ifR" -B 65536 -s 2048 -w /dev/null 'udp or (vlan and udp)' 2>"$work/td.err" &
tdpid=$!
pids+=("$tdpid")
sleep 1.5 # let both open their sockets

start=$(date +%s.%N)
ip netns exec "$nsT" tcpreplay -q -K --topspeed --loop "$LOOPS" -i "$ifT" "$work/calls.pcap" >"$work/r1.out" 2>&1 &
r1=$!
ip netns exec "$nsT" tcpreplay -q -K --topspeed --loop "$LOOPS" -i "$ifT" "$work/calls.pcap" >"$work/r2.out" 2>&1 &
r2=$!
pids+=("$r1" "$r2")
if [ -n "${PROFILE:-}" ] && [ "$CAPTURER" = smserver ]; then
	# PROFILE=FILE: a CPU profile of smserver during the replay (go tool pprof FILE).
	ip netns exec "$nsR" curl -s -o "$PROFILE" "http://127.0.0.1:9238/debug/pprof/profile?seconds=${PROFILE_SECONDS:-5}" &
fi
wait "$r1" "$r2"
end=$(date +%s.%N)
sleep 1 # let the captures drain their buffers

# ip netns exec forks the capturer: find the real process under it.
realpid() { local c; c=$(pgrep -P "$1" | head -1); echo "${c:-$1}"; }
smreal=$(realpid "$smpid")
tdreal=$(realpid "$tdpid")
sm_ticks=$(cpu_ticks "$smreal")
td_ticks=$(cpu_ticks "$tdreal")
sm_us=$(awk '{print $14 " user, " $15 " system"}' "/proc/$smreal/stat")
td_us=$(awk '{print $14 " user, " $15 " system"}' "/proc/$tdreal/stat")
metrics=""
if [ "$CAPTURER" = smserver ]; then
	metrics=$(ip netns exec "$nsR" curl -s http://127.0.0.1:9228/metrics || true)
fi
kill -INT "$smreal" "$tdreal"
wait "$smpid" || true
wait "$tdpid" || true

sent=$(cat "$work/r1.out" "$work/r2.out" | awk '/Actual:/ {s += $2} END {print s+0}')
rate=$(cat "$work/r1.out" "$work/r2.out" | awk '/Rated:/ {for (i=1;i<=NF;i++) if ($i ~ /pps/) r += $(i-1)} END {printf "%.0f", r}')

if [ "$CAPTURER" = capturecount ]; then
	read -r _ sm_pkts _ sm_rtp _ sm_streams _ sm_drops _ _ < <(grep '^packets' "$work/sm.out")
else
	sm_pkts=$(echo "$metrics" | awk '/^silentmon_capture_kernel_packets_total/ {s += $2} END {print s+0}')
	sm_drops=$(echo "$metrics" | awk '/^silentmon_capture_kernel_drops_total/ {s += $2} END {print s+0}')
	sm_rtp=$(echo "$metrics" | awk '/^silentmon_capture_rtp_packets_total/ {s += $2} END {print s+0}')
	sm_streams=$(echo "$metrics" | awk '/^silentmon_capture_streams / {s += $2} END {print s+0}')
fi
td_pkts=$(awk '/packets captured/ {print $1}' "$work/td.err")
td_drops=$(awk '/dropped by kernel/ {print $1}' "$work/td.err")

per_m() { awk -v t="$1" -v hz="$hz" -v n="$2" 'BEGIN { if (n > 0) printf "%.3f", t / hz / (n / 1e6); else print "n/a" }'; }
sm_cpu=$(per_m "$sm_ticks" "$sm_pkts")
td_cpu=$(per_m "$td_ticks" "$td_pkts")

printf 'replayed %s packets by 2 tcpreplay processes in %.1f s (about %s pps)\n' "$sent" "$(echo "$end - $start" | bc)" "$rate"
printf '%-28s %12s %12s %14s %22s\n' capturer packets drops "CPU s" "CPU s per Mpkt"
printf '%-28s %12s %12s %14.2f %22s\n' "silentmon ($CAPTURER)" "$sm_pkts" "$sm_drops" "$(echo "$sm_ticks / $hz" | bc -l)" "$sm_cpu"
printf '%-28s %12s %12s %14.2f %22s\n' "tcpdump -w /dev/null" "$td_pkts" "$td_drops" "$(echo "$td_ticks / $hz" | bc -l)" "$td_cpu"
echo "clock ticks: silentmon $sm_us; tcpdump $td_us"
awk -v a="$sm_cpu" -v b="$td_cpu" 'BEGIN { if (b > 0) printf "CPU per packet, silentmon / tcpdump: %.2f\n", a / b }'
if [ "$CAPTURER" = smserver ]; then
	echo "silentmon decoded $sm_rtp RTP packets (smserver keeps stream statistics for monitored streams only: $sm_streams tracked)"
else
	echo "silentmon decoded $sm_rtp RTP packets into $sm_streams streams"
fi
