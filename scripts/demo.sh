#!/usr/bin/env bash
# The product's built-in demo: a synthetic SPAN capture of 20 VLAN 85 calls
# is replayed through smserver; agent 1001 is monitored; smserver relays the
# agent's RTP over mutual TLS to smsupervisor, which writes a WAV (or plays
# it with OUTPUT=portaudio). The last line is "wrote PATH".
#
# smsupervisor's web console listens on CONSOLE_LISTEN (127.0.0.1:9230); the
# demo prints its address with the access token. With CONSOLE=1 the demo
# keeps running until Ctrl-C with the capture replayed in a loop, so that a
# person can open the console and listen to any agent: a second capture
# server, joined in a cluster, keeps the sessions while the replaying one
# starts again at the end of each pass.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin}
OUT=${DEMO_DIR:-out/demo}
OUTPUT=${OUTPUT:-wav}
DURATION=${DEMO_DURATION:-10s}
SERVER_ADDR=127.0.0.1:42228      # smserver, where clients connect
SUPERVISOR_ADDR=127.0.0.1:42328  # smsupervisor moves: both cannot own 42228 on one host
CONSOLE=${CONSOLE:-}
CONSOLE_LISTEN=${CONSOLE_LISTEN:-127.0.0.1:9230}
KEEPER_ADDR=127.0.0.1:42238      # with CONSOLE=1: the capture server that keeps the sessions
case "$CONSOLE" in
  ""|0) CONSOLE="" ;;
  1) if [[ -z ${DEMO_DURATION:-} ]]; then DURATION=30s; fi ;;
  *) echo "demo: CONSOLE must be 1 or empty, not \"$CONSOLE\"" >&2; exit 2 ;;
esac

rm -rf "$OUT"
mkdir -p "$OUT"
WAV="$OUT/agent1001.wav"
case "$OUTPUT" in
  wav) SINK="wav:$WAV"; if [[ -n $CONSOLE ]]; then SINK=null; fi ;;
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

# The agent directory: call i (from 0) is agent 1001+i on phone 10.10.0.(i+1).
names=("Alice Martin" "Bob Chen" "Carla Diaz" "Dev Patel" "Emma Rossi" "Farid Haddad" "Grace Kim"
  "Hugo Laurent" "Ines Costa" "Jon Berg")
teams=(Billing Sales Support)
{
  echo "agents:"
  for i in $(seq 0 19); do
    echo "  - {id: \"$((1001 + i))\", name: \"${names[i % 10]}\", team: ${teams[i % 3]}, extensions: [\"$((5001 + i))\"], phone_ip: 10.10.0.$((i + 1))}"
  done
} >"$OUT/agents.yaml"

console_servers=(--console-server "$SERVER_ADDR")
if [[ -n $CONSOLE ]]; then console_servers=(--console-server "$KEEPER_ADDR" --console-server "$SERVER_ADDR"); fi

"$BIN/smsupervisor" --listen "$SUPERVISOR_ADDR" --security-dir "$OUT/security" --output "$SINK" \
  --metrics-listen 127.0.0.1:9229 --console-listen "$CONSOLE_LISTEN" "${console_servers[@]}" \
  >"$OUT/smsupervisor.out" 2>"$OUT/smsupervisor.log" &
sup_pid=$!; pids+=("$sup_pid")

# The console's address with its token, as smsupervisor printed it.
console_line=""
for i in $(seq 1 50); do
  console_line=$(grep -m1 '^console: ' "$OUT/smsupervisor.log" || true)
  if [[ -n $console_line ]]; then break; fi
  if ! kill -0 "$sup_pid" 2>/dev/null; then echo "demo: smsupervisor exited:" >&2; cat "$OUT/smsupervisor.log" >&2; exit 1; fi
  sleep 0.1
done
if [[ -n $console_line ]]; then
  echo "demo: $console_line"
else
  echo "demo: no web console: $(grep -m1 'web console' "$OUT/smsupervisor.log" || echo "smsupervisor printed no console address")"
fi

if [[ -n $CONSOLE ]]; then
  # The keeper: a capture server with nothing to capture (one IPv6 call
  # outside the directory, replayed at start) that holds the sessions in
  # the cluster while the replaying server starts each pass again.
  "$BIN/gencalls" --calls 1 --ipv6 --duration 100ms --quiet --out "$OUT/idle.pcap" >/dev/null
  "$BIN/smserver" --pcap "$OUT/idle.pcap" --listen "$KEEPER_ADDR" --cluster-listen 127.0.0.1:42039 \
    --peer 127.0.0.1:42029 --directory "$OUT/agents.yaml" --security-dir "$OUT/security" \
    --metrics-listen 127.0.0.1:9238 >"$OUT/keeper.out" 2>"$OUT/keeper.log" &
  keeper_pid=$!; pids+=("$keeper_pid")
  for i in $(seq 1 100); do
    if "$BIN/smctl" status --server "$KEEPER_ADDR" --security-dir "$OUT/security" >/dev/null 2>&1; then break; fi
    if ! kill -0 "$keeper_pid" 2>/dev/null; then echo "demo: smserver (keeper) exited:" >&2; cat "$OUT/keeper.log" >&2; exit 1; fi
    sleep 0.1
  done
  trap 'echo; echo "demo: stopped"; exit 0' INT TERM
  echo "demo: open the console above and click Listen beside an agent (1001 sends 1 kHz); Ctrl-C ends the demo"
  pass=0
  while true; do
    pass=$((pass + 1))
    # Each pass waits for a session (from the cluster, after a restart)
    # before it replays the $DURATION capture.
    "$BIN/smserver" --pcap "$OUT/calls.pcap" --pcap-wait-session --exit-after-replay --listen "$SERVER_ADDR" \
      --cluster-listen 127.0.0.1:42029 --peer 127.0.0.1:42039 --directory "$OUT/agents.yaml" \
      --security-dir "$OUT/security" --metrics-listen 127.0.0.1:9228 >"$OUT/smserver.out" 2>"$OUT/smserver.log" &
    srv_pid=$!; pids+=("$srv_pid")
    if ! wait "$srv_pid"; then echo "demo: smserver failed:" >&2; cat "$OUT/smserver.log" >&2; exit 1; fi
    pids=("${pids[@]/$srv_pid}")
    echo "demo: capture replayed ($pass); again"
  done
fi
"$BIN/smserver" --pcap "$OUT/calls.pcap" --pcap-wait-session --exit-after-replay --listen "$SERVER_ADDR" --cluster-listen 127.0.0.1:42029 \
  --directory "$OUT/agents.yaml" --security-dir "$OUT/security" --metrics-listen 127.0.0.1:9228 >"$OUT/smserver.out" 2>"$OUT/smserver.log" &
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
