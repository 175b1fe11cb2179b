#!/usr/bin/env bash
# Live capture benchmark (make bench-live, as root).
#
# SENDERS tcpreplay processes replay a generator capture at top speed into
# one end of a veth pair; on the other end, in the same run and so at the
# same rate, silentmon's capture (smserver --interface, or
# bench/live/capturecount which does the same decode and stream tracking
# without the relay) and `tcpdump -w /dev/null` both capture. Each run
# prints, for both, packets, kernel drops, CPU seconds (user + system) per
# million packets and wake-ups (voluntary context switches, all threads)
# per thousand packets, then the ratio of CPU per packet silentmon /
# tcpdump. CPU and wake-ups are counted from just before the replay starts
# to one second after it ends, so start-up is left out for both. After
# RUNS runs of a configuration it prints the median ratio.
#
# Environment: RUNS (5), SENDERS ("2 4": each configuration in turn),
# CALLS (1000), DURATION (5s), LOOPS (per tcpreplay process; default
# 8 / senders, so every configuration replays 4 M packets), CAPTURER
# (smserver, the default, or capturecount), WORKERS (1), BIN (bin).
# Diagnostics: PROFILE=FILE takes a CPU profile of smserver during each
# replay (FILE, or FILE.<senders>s.<run> when there are several runs;
# PROFILE_SECONDS, default 5); STRACE=1 counts silentmon's system calls
# during each replay (strace -c -f; it slows the capture, so its CPU
# figures are not comparable); PERF=FILE records smserver's stacks, kernel
# included, with perf record -g during each replay (FILE or
# FILE.<senders>s.<run>; perf report -i FILE).
#
# At the default sizes a run takes about 10 s on a quiet machine, so the
# whole benchmark (2 × 5 runs) takes about 2 minutes.
set -euo pipefail

RUNS=${RUNS:-5}
SENDERS=${SENDERS:-2 4}
CALLS=${CALLS:-1000}
DURATION=${DURATION:-5s}
WORKERS=${WORKERS:-1}
BIN=${BIN:-bin}
CAPTURER=${CAPTURER:-smserver}

if [ "$(id -u)" != 0 ]; then
	echo "bench-live needs root (network namespaces, AF_PACKET)." >&2
	exit 2
fi
for tool in tcpreplay tcpdump ip go curl bc awk; do
	command -v "$tool" >/dev/null || { echo "bench-live needs $tool on PATH (make deps installs it)." >&2; exit 2; }
done
if [ -n "${STRACE:-}" ]; then
	command -v strace >/dev/null || { echo "bench-live: STRACE=1 needs strace on PATH." >&2; exit 2; }
fi
case "$RUNS" in '' | *[!0-9]* | 0) echo "RUNS must be a positive number, not $RUNS." >&2; exit 2 ;; esac
for s in $SENDERS; do
	case "$s" in '' | *[!0-9]* | 0) echo "SENDERS must list positive numbers, not $SENDERS." >&2; exit 2 ;; esac
done
case "$CAPTURER" in
smserver) [ -x "$BIN/smserver" ] || { echo "bench-live: $BIN/smserver is missing (make build)." >&2; exit 2; } ;;
capturecount) ;;
*) echo "CAPTURER must be capturecount or smserver, not $CAPTURER." >&2; exit 2 ;;
esac

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
if [ "$CAPTURER" = capturecount ]; then
	go build -o "$work/capturecount" ./bench/live/capturecount
fi

ip netns add "$nsT"
ip netns add "$nsR"
ip link add "$ifT" netns "$nsT" type veth peer name "$ifR" netns "$nsR"
ip -n "$nsT" link set "$ifT" up
ip -n "$nsR" link set "$ifR" up
ip -n "$nsR" link set lo up # smserver's metrics on 127.0.0.1:9228 inside the namespace
for ns in "$nsT" "$nsR"; do ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1; done

hz=$(getconf CLK_TCK)
# cpu_ticks PID: user and system time of a process (all its threads), in
# clock ticks.
cpu_ticks() { awk '{print $14, $15}' "/proc/$1/stat"; }
# wakeups PID: voluntary context switches summed over the process's threads.
wakeups() { cat /proc/"$1"/task/*/status 2>/dev/null | awk '/^voluntary_ctxt_switches/ {s += $2} END {print s+0}'; }
# ip netns exec may fork the capturer: find the real process under it.
realpid() { local c; c=$(pgrep -P "$1" | head -1); echo "${c:-$1}"; }
per_m() { awk -v t="$1" -v hz="$hz" -v n="$2" 'BEGIN { if (n > 0) printf "%.3f", t / hz / (n / 1e6); else print "n/a" }'; }
per_k() { awk -v w="$1" -v n="$2" 'BEGIN { if (n > 0) printf "%.2f", w / (n / 1e3); else print "n/a" }'; }
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{v[NR] = $1} END { if (NR == 0) print "n/a"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# one_run SENDERS RUN: one side-by-side run; appends its ratio to $ratios
# and its drops to $alldrops.
one_run() {
	local senders=$1 run=$2 loops=$3
	local smpid tdpid
	case "$CAPTURER" in
	smserver)
		ip netns exec "$nsR" "$BIN/smserver" --interface "$ifR" --workers "$WORKERS" --insecure --cluster=false \
			--listen 127.0.0.1:0 --metrics-listen 127.0.0.1:9228 --debug-listen 127.0.0.1:9238 >"$work/sm.out" 2>&1 &
		;;
	capturecount)
		ip netns exec "$nsR" "$work/capturecount" -i "$ifR" -workers "$WORKERS" >"$work/sm.out" 2>&1 &
		;;
	esac
	smpid=$!
	pids+=("$smpid")
	ip netns exec "$nsR" tcpdump -q -n -i "$ifR" -B 65536 -s 2048 -w /dev/null 'udp or (vlan and udp)' 2>"$work/td.err" &
	tdpid=$!
	pids+=("$tdpid")
	sleep 1.5 # let both open their sockets
	local smreal tdreal
	smreal=$(realpid "$smpid")
	tdreal=$(realpid "$tdpid")

	local stpid=""
	if [ -n "${STRACE:-}" ]; then
		strace -c -f -p "$smreal" -o "$work/strace.out" 2>/dev/null &
		stpid=$!
		sleep 0.5
	fi
	local perfpid=""
	if [ -n "${PERF:-}" ]; then
		local perff=$PERF
		if [ "$nruns" -gt 1 ]; then perff=$PERF.${senders}s.$run; fi
		perf record -q -g -F 999 -p "$smreal" -o "$perff" >/dev/null 2>&1 &
		perfpid=$!
		sleep 0.5
	fi
	local sm0 td0 smw0 tdw0
	sm0=$(cpu_ticks "$smreal")
	td0=$(cpu_ticks "$tdreal")
	smw0=$(wakeups "$smreal")
	tdw0=$(wakeups "$tdreal")
	local start end r rs=()
	start=$(date +%s.%N)
	for ((r = 0; r < senders; r++)); do
		ip netns exec "$nsT" tcpreplay -q -K --topspeed --loop "$loops" -i "$ifT" "$work/calls.pcap" >"$work/r$r.out" 2>&1 &
		rs+=("$!")
		pids+=("$!")
	done
	if [ -n "${PROFILE:-}" ] && [ "$CAPTURER" = smserver ]; then
		local pf=$PROFILE
		if [ "$nruns" -gt 1 ]; then pf=$PROFILE.${senders}s.$run; fi
		ip netns exec "$nsR" curl -s -o "$pf" "http://127.0.0.1:9238/debug/pprof/profile?seconds=${PROFILE_SECONDS:-5}" &
	fi
	wait "${rs[@]}"
	end=$(date +%s.%N)
	sleep 1 # let the captures drain their buffers
	local sm1 td1 smw1 tdw1
	sm1=$(cpu_ticks "$smreal")
	td1=$(cpu_ticks "$tdreal")
	smw1=$(wakeups "$smreal")
	tdw1=$(wakeups "$tdreal")
	if [ -n "$stpid" ]; then
		kill -INT "$stpid" 2>/dev/null || true
		wait "$stpid" || true
	fi
	if [ -n "$perfpid" ]; then
		kill -INT "$perfpid" 2>/dev/null || true
		wait "$perfpid" || true
	fi

	local metrics=""
	if [ "$CAPTURER" = smserver ]; then
		metrics=$(ip netns exec "$nsR" curl -s http://127.0.0.1:9228/metrics || true)
	fi
	kill -INT "$smreal" "$tdreal"
	wait "$smpid" || true
	wait "$tdpid" || true

	local sent rate sm_pkts sm_drops sm_rtp td_pkts td_drops
	sent=$(cat "$work"/r*.out | awk '/Actual:/ {s += $2} END {print s+0}')
	rate=$(cat "$work"/r*.out | awk '/Rated:/ {for (i=1;i<=NF;i++) if ($i ~ /pps/) r += $(i-1)} END {printf "%.0f", r}')
	rm -f "$work"/r*.out
	if [ "$CAPTURER" = capturecount ]; then
		read -r _ sm_pkts _ sm_rtp _ _ _ sm_drops _ _ < <(grep '^packets' "$work/sm.out")
	else
		sm_pkts=$(echo "$metrics" | awk '/^silentmon_capture_kernel_packets_total/ {s += $2} END {print s+0}')
		sm_drops=$(echo "$metrics" | awk '/^silentmon_capture_kernel_drops_total/ {s += $2} END {print s+0}')
		sm_rtp=$(echo "$metrics" | awk '/^silentmon_capture_rtp_packets_total/ {s += $2} END {print s+0}')
	fi
	td_pkts=$(awk '/packets captured/ {print $1}' "$work/td.err")
	td_drops=$(awk '/dropped by kernel/ {print $1}' "$work/td.err")

	local smu sms tdu tds smt tdt
	read -r smu sms <<<"$(paste -d' ' <(echo "$sm0") <(echo "$sm1") | awk '{print $3 - $1, $4 - $2}')"
	read -r tdu tds <<<"$(paste -d' ' <(echo "$td0") <(echo "$td1") | awk '{print $3 - $1, $4 - $2}')"
	smt=$((smu + sms))
	tdt=$((tdu + tds))
	local sm_cpu td_cpu ratio
	sm_cpu=$(per_m "$smt" "$sm_pkts")
	td_cpu=$(per_m "$tdt" "$td_pkts")
	ratio=$(awk -v a="$sm_cpu" -v b="$td_cpu" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }')

	printf '%d senders, run %d of %d: replayed %s packets in %.1f s (about %s pps)\n' "$senders" "$run" "$RUNS" "$sent" "$(echo "$end - $start" | bc)" "$rate"
	printf '  %-26s %10s %8s %8s %10s %16s %14s\n' capturer packets drops "CPU s" "user/sys" "CPU s per Mpkt" "wake-ups/kpkt"
	printf '  %-26s %10s %8s %8.2f %10s %16s %14s\n' "silentmon ($CAPTURER)" "$sm_pkts" "$sm_drops" "$(echo "$smt / $hz" | bc -l)" "$smu/$sms" "$sm_cpu" "$(per_k $((smw1 - smw0)) "$sm_pkts")"
	printf '  %-26s %10s %8s %8.2f %10s %16s %14s\n' "tcpdump -w /dev/null" "$td_pkts" "$td_drops" "$(echo "$tdt / $hz" | bc -l)" "$tdu/$tds" "$td_cpu" "$(per_k $((tdw1 - tdw0)) "$td_pkts")"
	echo "  CPU per packet, silentmon / tcpdump: $ratio (silentmon decoded $sm_rtp RTP packets)"
	if [ -n "$stpid" ] && [ -s "$work/strace.out" ]; then
		echo "  silentmon's system calls during the replay (strace -c -f):"
		awk -v n="$sm_pkts" 'NR <= 2 || /^-/ {next} $NF == "total" {print "   ", $0; next} NF >= 5 && $4 ~ /^[0-9]+$/ {printf "    %-20s %10s calls %8.3f per kpkt\n", $NF, $4, (n > 0 ? $4 / (n / 1e3) : 0)}' "$work/strace.out" | head -12
	fi
	ratios="$ratios $ratio"
	alldrops="$alldrops $sm_drops/$td_drops"
}

nruns=$(($(echo "$SENDERS" | wc -w) * RUNS))
summary=()
for senders in $SENDERS; do
	loops=${LOOPS:-$((8 / senders > 0 ? 8 / senders : 1))}
	ratios="" alldrops=""
	for ((run = 1; run <= RUNS; run++)); do
		one_run "$senders" "$run" "$loops"
	done
	med=$(echo "$ratios" | median)
	summary+=("$(printf '%d senders: CPU per packet silentmon / tcpdump, runs:%s; median %s (target ≤ 0.50); kernel drops silentmon/tcpdump:%s' "$senders" "$ratios" "$med" "$alldrops")")
	echo "${summary[-1]}"
done
echo
echo "summary"
printf '%s\n' "${summary[@]}"
