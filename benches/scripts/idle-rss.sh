#!/usr/bin/env bash
# Memory per idle connection: a server's resident set (VmRSS in
# /proc/PID/status) before and after `wsload --idle N` opens N upgraded,
# quiet connections, for the wsproto echo server, the tungstenite echo server
# and chatserv. Prints a Markdown table on stdout.
#
# Usage: benches/scripts/idle-rss.sh [-n CONNECTIONS] [-o OUTDIR]
#   -n  idle connections per server (default 1000)
#   NO_BUILD=1 skips `cargo build`; BIN=DIR picks the binaries' directory
#   (default $CARGO_TARGET_DIR/release, else target/release).
#   TLS=1 (env): the same over wss:// (a test certificate from the interop
#   crate's gen_certs; each server gets --tls-cert/--tls-key, the echo
#   servers 256 KiB stacks as in echo-bench.sh; wsload's client side is
#   rustls' StreamOwned). No targets then.
#
# Targets: <= 32 KiB per connection for echo_wsproto, <= 64 KiB for chatserv
# (a reader and a writer thread per connection).
set -euo pipefail

N=1000
OUT=""
while getopts "n:o:h" opt; do
  case $opt in
    n) N=$OPTARG ;;
    o) OUT=$OPTARG ;;
    *) sed -n '2,19p' "$0"; exit 2 ;;
  esac
done

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
if [[ -z "${NO_BUILD:-}" ]]; then
  (cd "$ROOT" && cargo build --release -q -p benches --bin wsload --bin echo_wsproto --bin echo_tungstenite \
                 && cargo build --release -q -p chatserv)
fi
BIN=${BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release}
OUT=${OUT:-$(mktemp -d /tmp/idle-rss.XXXXXX)}
mkdir -p "$OUT"
SCHEME=ws HOST=127.0.0.1 SERVER_TLS=() ECHO_TLS=() WSLOAD_TLS=()
if [[ ${TLS:-0} == 1 ]]; then
  [[ -n "${NO_BUILD:-}" ]] || (cd "$ROOT" && cargo build --release -q -p interop --bin gen_certs)
  "$BIN/gen_certs" "$OUT/certs"
  SCHEME=wss HOST=localhost
  SERVER_TLS=(--tls-cert "$OUT/certs/chain.pem" --tls-key "$OUT/certs/key.pem")
  ECHO_TLS=("${SERVER_TLS[@]}" --stack 262144)
  WSLOAD_TLS=(--ca-file "$OUT/certs/ca.pem")
fi

# Each side holds N sockets (plus a few): raise the descriptor limit.
ulimit -n $(( N * 2 + 1024 )) 2>/dev/null || ulimit -n "$(ulimit -Hn)"
if (( $(ulimit -n) < N + 64 )); then
  echo "ulimit -n is $(ulimit -n): too low for $N connections" >&2; exit 1
fi

SERVER=""
LOADER=""
cleanup() {
  [[ -n $LOADER ]] && kill "$LOADER" 2>/dev/null || true
  [[ -n $SERVER ]] && kill "$SERVER" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT

field() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }   # pid field -> value (kB for VmRSS)

# measure NAME TARGET_KIB PATH_QUERY COMMAND... (the command gets --listen 127.0.0.1:0)
measure() {
  local name=$1 target=$2 query=$3; shift 3
  "$@" --listen 127.0.0.1:0 > "$OUT/$name.out" 2> "$OUT/$name.err" &
  SERVER=$!
  local port=""
  for _ in $(seq 200); do
    port=$(grep -ohE '127\.0\.0\.1:[0-9]+' "$OUT/$name.out" "$OUT/$name.err" | head -n 1 | cut -d: -f2 || true)
    [[ -n $port && $port != 0 ]] && break
    sleep 0.05
  done
  [[ -n $port ]] || { echo "$name did not start" >&2; cat "$OUT/$name.err" >&2; exit 1; }
  sleep 0.5
  local before threads_before
  before=$(field "$SERVER" VmRSS); threads_before=$(field "$SERVER" Threads)

  rm -f "$OUT/fifo"; mkfifo "$OUT/fifo"
  "$BIN/wsload" --idle "$N" --url-pattern "$SCHEME://$HOST:$port/$query" ${WSLOAD_TLS[@]+"${WSLOAD_TLS[@]}"} \
      < "$OUT/fifo" > "$OUT/$name.wsload" 2> "$OUT/$name.wsload.err" &
  LOADER=$!
  exec 5> "$OUT/fifo"          # wsload holds the connections until this closes
  for _ in $(seq 1200); do
    grep -q '^ready' "$OUT/$name.wsload" && break
    kill -0 "$LOADER" 2>/dev/null || break
    sleep 0.05
  done
  sleep 1                      # let the server's threads reach their idle read
  local after threads_after ready
  after=$(field "$SERVER" VmRSS); threads_after=$(field "$SERVER" Threads)
  ready=$(grep '^ready' "$OUT/$name.wsload" || echo "ready connections=0 errors=?")
  exec 5>&-
  wait "$LOADER" || true
  LOADER=""
  sleep 1
  local closed
  closed=$(field "$SERVER" VmRSS)
  kill "$SERVER"; wait "$SERVER" 2>/dev/null || true
  SERVER=""
  local result opened
  result=$(grep '^RESULT' "$OUT/$name.wsload" || echo "RESULT errors=?")
  opened=$(sed -n 's/.*connections=\([0-9]*\).*/\1/p' <<< "$ready")
  local per="n/a" verdict="n/a"
  if (( opened > 0 )); then
    per=$(awk -v a="$after" -v b="$before" -v n="$opened" 'BEGIN { printf "%.1f", (a - b) / n }')
    verdict=$(awk -v p="$per" -v t="$target" 'BEGIN { print (t == "" ? "-" : (p <= t ? "ok" : "MISSED")) }')
  fi
  echo "$name: $ready; $result" >&2
  printf '| %s | %d | %s → %s | %s → %s | %s | %s | %s | %s |\n' \
    "$name" "$opened" "$before" "$after" "$threads_before" "$threads_after" "$per" \
    "${target:+≤ $target} $verdict" "$closed" \
    "$(sed -n 's/.*errors=\([0-9?]*\).*/\1/p' <<< "$result")"
}

echo "Idle connections over $SCHEME://: $N per server; load average $(cut -d' ' -f1-3 /proc/loadavg)."
echo
echo "| server | connections | VmRSS kB before → after | threads before → after | KiB per connection | target KiB | VmRSS kB after close | wsload errors |"
echo "|---|---:|---:|---:|---:|---|---:|---:|"
if [[ ${TLS:-0} == 1 ]]; then TARGET_ECHO="" TARGET_CHAT=""; else TARGET_ECHO=32 TARGET_CHAT=64; fi
measure echo_wsproto "$TARGET_ECHO" "" "$BIN/echo_wsproto" ${ECHO_TLS[@]+"${ECHO_TLS[@]}"}
measure echo_tungstenite "" "" "$BIN/echo_tungstenite" ${ECHO_TLS[@]+"${ECHO_TLS[@]}"}
measure chatserv "$TARGET_CHAT" "?user=u{i}" "$BIN/chatserv" --max-connections 20000 ${SERVER_TLS[@]+"${SERVER_TLS[@]}"}
