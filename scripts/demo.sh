#!/usr/bin/env bash
# The product's built-in demo: a synthetic SPAN capture of 20 VLAN 85 calls
# is replayed through smserver; agent 1001 is monitored; smserver relays the
# agent's RTP over mutual TLS to smsupervisor, which writes a WAV (or plays
# it with OUTPUT=portaudio). The last line is "wrote PATH".
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin}
OUT=${DEMO_DIR:-out/demo}
OUTPUT=${OUTPUT:-wav}
DURATION=${DEMO_DURATION:-10s}
SERVER_ADDR=127.0.0.1:42228      # smserver, where clients connect
SUPERVISOR_ADDR=127.0.0.1:42328  # smsupervisor moves: both cannot own 42228 on one host

rm -rf "$OUT"
mkdir -p "$OUT"
WAV="$OUT/agent1001.wav"
case "$OUTPUT" in
  wav) SINK="wav:$WAV" ;;
  portaudio*|null) SINK="$OUTPUT" ;;
  *) echo "demo: OUTPUT must be wav, portaudio or null, not \"$OUTPUT\"" >&2; exit 2 ;;
esac

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

echo "demo: certificates in $OUT/security"
"$BIN/smctl" certs quickstart --dir "$OUT/security" >"$OUT/certs.log"

echo "demo: generating 20 calls on VLAN 85, $DURATION each (agent 1001's phone 10.10.0.1 sends 1 kHz)"
"$BIN/gencalls" --calls 20 --vlan 85 --duration "$DURATION" --agent-tone 1000 --out "$OUT/calls.pcap" >"$OUT/calls.txt"

"$BIN/smsupervisor" --listen "$SUPERVISOR_ADDR" --security-dir "$OUT/security" --output "$SINK" \
  --metrics-listen 127.0.0.1:9229 >"$OUT/smsupervisor.out" 2>"$OUT/smsupervisor.log" &
sup_pid=$!; pids+=("$sup_pid")
"$BIN/smserver" --pcap "$OUT/calls.pcap" --pcap-wait-session --exit-after-replay --listen "$SERVER_ADDR" --cluster-listen 127.0.0.1:42029 \
  --security-dir "$OUT/security" --metrics-listen 127.0.0.1:9228 >"$OUT/smserver.out" 2>"$OUT/smserver.log" &
srv_pid=$!; pids+=("$srv_pid")

# Wait until smserver answers.
for i in $(seq 1 100); do
  if "$BIN/smctl" status --server "$SERVER_ADDR" --security-dir "$OUT/security" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$srv_pid" 2>/dev/null; then echo "demo: smserver exited:" >&2; cat "$OUT/smserver.log" >&2; exit 1; fi
  sleep 0.1
done

session=$("$BIN/smctl" monitor start --server "$SERVER_ADDR" --security-dir "$OUT/security" \
  --agent 1001 --endpoint 10.10.0.1 --supervisor "$SUPERVISOR_ADDR")
echo "demo: monitoring agent 1001 (session $session); replaying the capture at its recorded pace"

if ! wait "$srv_pid"; then echo "demo: smserver failed:" >&2; cat "$OUT/smserver.log" >&2; exit 1; fi
# Let the supervisor play out its jitter buffer, then stop it cleanly.
sleep 0.5
kill -TERM "$sup_pid"
if ! wait "$sup_pid"; then echo "demo: smsupervisor failed:" >&2; cat "$OUT/smsupervisor.log" >&2; exit 1; fi
pids=()

cat "$OUT/smserver.out" "$OUT/smsupervisor.out"
if [[ "$OUTPUT" == wav ]]; then
  echo "wrote $WAV"
else
  echo "played to $OUTPUT"
fi
