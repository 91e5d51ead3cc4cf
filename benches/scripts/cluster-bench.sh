#!/usr/bin/env bash
# Broadcast load on 1, 2 and 3 chatserv nodes sharing one Redis:
# deliveries/s and send-to-receipt latency (cross-node and same-node).
#   bash benches/scripts/cluster-bench.sh [--users 200] [--rate 1000] [--duration 5]
# Needs redis-server (apt-get install redis-server); starts its own on a
# free port and stops it (and the nodes) by PID.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
USERS=200 RATE=1000 DURATION=5
while [ $# -gt 0 ]; do
  case $1 in
    --users) USERS=$2; shift 2 ;;
    --rate) RATE=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
cargo build --release -q -p chatserv -p benches --bin chatserv --bin chatload
TARGET=${CARGO_TARGET_DIR:-target}/release
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
DIR=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$DIR"; }
trap cleanup EXIT
for N in 1 2 3; do
  RPORT=$(free_port)
  redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$DIR" \
    --daemonize no >/dev/null 2>&1 &
  RPID=$!; PIDS+=("$RPID")
  until redis-cli -p "$RPORT" ping >/dev/null 2>&1; do sleep 0.05; done
  URLS=()
  NODE_PIDS=()
  for i in $(seq 1 "$N"); do
    P=$(free_port)
    RUST_LOG=warn "$TARGET/chatserv" --listen "127.0.0.1:$P" --send-queue 100000 \
      --redis "redis://127.0.0.1:$RPORT" --node-id "n$i" 2>"$DIR/node$i.log" &
    NODE_PIDS+=($!); PIDS+=($!)
    URLS+=("ws://127.0.0.1:$P")
  done
  sleep 1.5
  NODES=$(IFS=,; echo "${URLS[*]}")
  "$TARGET/chatload" --nodes "$NODES" --users "$USERS" --senders 2 --rate "$RATE" \
    --duration "$DURATION" | tail -n 2
  for p in "${NODE_PIDS[@]}" "$RPID"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
done
