#!/usr/bin/env bash
# Cross-node broadcast with Python `websockets` clients on two chatserv
# nodes sharing one redis-server (started here on a free port, stopped by
# PID). Usage: run.sh PATH/TO/chatserv PYTHON (a Python with websockets,
# e.g. interop/python/.venv/bin/python after interop/run.sh).
set -euo pipefail
CHATSERV=${1:?chatserv binary}
PY=${2:?python with websockets}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
DIR=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$DIR"; }
trap cleanup EXIT
RPORT=$(free_port)
redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$DIR" \
  --daemonize no >/dev/null 2>&1 &
PIDS+=($!)
until redis-cli -p "$RPORT" ping >/dev/null 2>&1; do sleep 0.05; done
URLS=()
for id in a b; do
  P=$(free_port)
  "$CHATSERV" --listen "127.0.0.1:$P" --redis "redis://127.0.0.1:$RPORT" --node-id "$id" \
    2>"$DIR/$id.log" &
  PIDS+=($!)
  URLS+=("ws://127.0.0.1:$P")
done
for id in a b; do
  for _ in $(seq 100); do grep -q "delivering through the stream" "$DIR/$id.log" && break; sleep 0.05; done
done
"$PY" "$HERE/cross_node.py" "${URLS[@]}"
