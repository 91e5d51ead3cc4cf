#!/usr/bin/env bash
# Chat broadcast benchmark (issue 15): chatserv as built from the work tree
# ("new"), chatserv built from a baseline revision ("base") and the Node `ws`
# chat peer (benches/node-chat, "node"), driven alike by chatload's
# broadcast mode, servers alternating within each run. Prints Markdown
# tables on stdout; raw RESULT lines go to $OUT/raw.txt.
#
# Usage: benches/scripts/chat-bench.sh [options]
#   --runs N         runs per load and server; tables show medians (default 3)
#   --duration S     measured seconds per run (default 5)
#   --warmup S       seconds of load before measuring (default 1)
#   --grid "U:S:R ..."  loads: users:senders:msg/s all senders together, 0 =
#                    unpaced (default "1000:1:100 200:2:400 200:2:0")
#   --servers "new base node"  the columns, in run order (rotated per run)
#   --baseline REV   the "base" chatserv's revision (default c0df41e, where
#                    the issue 15 work began; "none" drops the column). Built
#                    in a temporary git worktree with its own target dir
#                    ($BASELINE_TARGET, default $TMPDIR/chat-bench-baseline-target),
#                    or the new binary reused if chatserv's sources match.
#   --hold N         instead of the grid: each server holds N users (chatserv
#                    with its default limits), one message must reach all
#                    N-1 others; then --extra M more logins (default 100)
#                    should get 503 and a second message still arrive
#   --handshakes N   instead of the grid: N connections opened and upgraded
#                    as fast as possible, --rounds R times (default 5) per run
#   -o DIR           directory for raw results (default a fresh temp dir)
#   NO_BUILD=1 skips cargo build; CHATSERV_ARGS adds options to both
#   chatservs (they always get --no-deflate and RUST_LOG=warn: per-login
#   info logs would be measured too); CHATLOAD_ARGS adds options to chatload.
#
# Targets (issue 15), new chatserv against node, medians:
#   1000 users x 100 msg/s: >= 99 % of asked deliveries/s, p99 <= 20 ms,
#     server CPU % <= node's
#   200 users, 2 senders x 200 msg/s: CPU us/delivery <= node's, p99 <= 5 ms
#   200 users, 2 senders unpaced: >= 3x node's deliveries/s
#   --hold 10000: all logged in, fan-out <= 1 s, RSS <= 32 KiB/connection,
#     no error, 503s past the limit; --handshakes 1000: >= 16k/s
set -euo pipefail

RUNS=3 DURATION=5 WARMUP=1 OUT=""
GRID="1000:1:100 200:2:400 200:2:0"
SERVERS="new base node"
BASELINE=c0df41e
HOLD="" EXTRA=100 HANDSHAKES="" ROUNDS=5
while [[ $# -gt 0 ]]; do
  case $1 in
    --runs) RUNS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --warmup) WARMUP=$2; shift 2 ;;
    --grid) GRID=$2; shift 2 ;;
    --servers) SERVERS=$2; shift 2 ;;
    --baseline) BASELINE=$2; shift 2 ;;
    --hold) HOLD=$2; shift 2 ;;
    --extra) EXTRA=$2; shift 2 ;;
    --handshakes) HANDSHAKES=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    -o) OUT=$2; shift 2 ;;
    -h|--help) sed -n '2,38p' "$0"; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [[ $BASELINE == none ]]; then SERVERS=$(tr ' ' '\n' <<< "$SERVERS" | grep -vx base | xargs); fi

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
BIN=${BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release}
OUT=${OUT:-$(mktemp -d /tmp/chat-bench.XXXXXX)}
mkdir -p "$OUT"
RAW=$OUT/raw.txt
: > "$RAW"
if [[ -z "${NO_BUILD:-}" ]]; then
  cargo build --release -q -p chatserv -p benches --bin chatserv --bin chatload
fi

# The baseline chatserv: the new binary when chatserv's sources (and what
# it links) are the same at REV as in the work tree, else a build of REV in
# a temporary worktree (removed afterwards; its target dir is kept, so the
# next run's build is incremental).
BASE_BIN="" BASE_NOTE=""
if [[ " $SERVERS " == *" base "* ]]; then
  REV=$(git rev-parse --short "$BASELINE^{commit}")
  if git diff --quiet "$REV" -- chatserv wsproto chatcommon Cargo.lock Cargo.toml; then
    BASE_BIN=$BIN/chatserv BASE_NOTE="base = $REV, the same chatserv sources as the work tree (new binary reused)"
  else
    WT=$(mktemp -d "${TMPDIR:-/tmp}/chat-bench-base.XXXXXX")
    git worktree add -q --detach "$WT" "$REV"
    BASE_TARGET=${BASELINE_TARGET:-${TMPDIR:-/tmp}/chat-bench-baseline-target}
    echo "building chatserv at $REV in $WT (target $BASE_TARGET)" >&2
    (cd "$WT" && CARGO_TARGET_DIR=$BASE_TARGET cargo build --release -q -p chatserv)
    cp "$BASE_TARGET/release/chatserv" "$OUT/chatserv-base"
    git worktree remove --force "$WT"
    BASE_BIN=$OUT/chatserv-base BASE_NOTE="base = chatserv at $REV"
  fi
fi
if [[ " $SERVERS " == *" node "* ]]; then
  [[ -d benches/node-chat/node_modules ]] || (cd benches/node-chat && npm ci --silent --no-audit --no-fund)
  NODE_NOTE="node = benches/node-chat (Node $(node --version), ws $(node -p 'require("./benches/node-chat/node_modules/ws/package.json").version'))"
fi

# 10,000 users: both the servers and chatload (which raises its own soft
# limit) need more descriptors than the usual 1,024.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
# Zero wake-up latency for every server alike while measuring (PM QoS:
# holds while the file stays open), as in lib.sh.
DMA="not held"
if [[ -w /dev/cpu_dma_latency ]]; then
  exec 3>/dev/cpu_dma_latency
  printf '\x00\x00\x00\x00' >&3
  DMA="held at 0 us"
fi

SRV_PID="" SRV_PORT=""
cleanup() { [[ -n $SRV_PID ]] && kill "$SRV_PID" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_server KIND: a fresh server per run (no state carried over), on a
# free port; waits until it listens and sets SRV_PID and SRV_PORT.
start_server() {
  SRV_PORT=$(free_port)
  local log=$OUT/server-$1.err
  case $1 in
    # shellcheck disable=SC2086 # CHATSERV_ARGS is a list of options
    new) RUST_LOG=warn "$BIN/chatserv" --listen "127.0.0.1:$SRV_PORT" --no-deflate ${CHATSERV_ARGS:-} 2>>"$log" & ;;
    # shellcheck disable=SC2086
    base) RUST_LOG=warn "$BASE_BIN" --listen "127.0.0.1:$SRV_PORT" --no-deflate ${CHATSERV_ARGS:-} 2>>"$log" & ;;
    node) node benches/node-chat/chat_server.mjs "$SRV_PORT" >/dev/null 2>>"$log" & ;;
    *) echo "unknown server $1 (new, base, node)" >&2; exit 2 ;;
  esac
  SRV_PID=$!
  for _ in $(seq 200); do
    ss -Hltn "sport = :$SRV_PORT" | grep -q . && return 0
    kill -0 "$SRV_PID" 2>/dev/null || break
    sleep 0.05
  done
  echo "server $1 did not start; see $log" >&2
  exit 1
}
stop_server() { kill "$SRV_PID" 2>/dev/null || true; wait "$SRV_PID" 2>/dev/null || true; SRV_PID=""; }

# run_chatload LABEL ARGS...: one chatload run against the running server;
# appends "LABEL RESULT ..." to $RAW (a run without RESULT is an error).
run_chatload() {
  local label=$1 line status=0
  shift
  # shellcheck disable=SC2086 # CHATLOAD_ARGS is a list of options
  line=$(timeout 600 "$BIN/chatload" --nodes "ws://127.0.0.1:$SRV_PORT" --server-pid "$SRV_PID" "$@" \
           ${CHATLOAD_ARGS:-} 2>>"$OUT/chatload.err" | tail -n 1) || status=$?
  [[ $line == RESULT* ]] || line="RESULT errors=1 failed_status=$status"
  echo "$label $line" | tee -a "$RAW" >&2
}

# each_run BODY: RUNS times, BODY SERVER RUN for every server, the order
# rotated each run so that slow drift hits all servers alike.
each_run() {
  local r k server order
  read -ra order <<< "$SERVERS"
  for r in $(seq "$RUNS"); do
    k=$(( (r - 1) % ${#order[@]} ))
    for server in "${order[@]:k}" "${order[@]:0:k}"; do "$1" "$server" "$r"; done
  done
}

START_LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
echo "load before: $START_LOAD; cpu_dma_latency $DMA; $(nproc) cores; results in $OUT" >&2
NOTES="${BASE_NOTE:+$BASE_NOTE; }${NODE_NOTE:-}"

hold_one() {
  start_server "$1"
  run_chatload "server=$1 run=$2" --hold --users "$HOLD" --extra "$EXTRA"
  stop_server
}
handshakes_one() {
  start_server "$1"
  run_chatload "server=$1 run=$2" --handshakes --users "$HANDSHAKES" --rounds "$ROUNDS"
  stop_server
}
grid_one() {
  start_server "$1"
  run_chatload "row=$SPEC server=$1 run=$2" --users "$U" --senders "$S" --rate "$R" \
    --duration "$DURATION" --warmup "$WARMUP"
  stop_server
}

if [[ -n $HOLD ]]; then
  each_run hold_one
  MODE=hold
elif [[ -n $HANDSHAKES ]]; then
  each_run handshakes_one
  MODE=handshakes
else
  for SPEC in $GRID; do
    IFS=: read -r U S R <<< "$SPEC"
    each_run grid_one
  done
  MODE=grid
fi
END_LOAD=$(cut -d' ' -f1-3 /proc/loadavg)

PYTHONPATH=$(dirname "$0") python3 - "$RAW" "$MODE" "$SERVERS" "$RUNS" "$DURATION" "$WARMUP" \
  "$START_LOAD" "$END_LOAD" "$DMA" "$NOTES" <<'PY'
import sys
from results import read_runs, median
raw, mode, servers, runs, duration, warmup, start_load, end_load, dma, notes = sys.argv[1:]
servers = servers.split()
med = lambda rs, f: median(rs, f, missing=0) if rs else float("nan")
errs = lambda rs: sum(int(float(r.get("errors", 1))) for r in rs)
head = f"median of {runs} run(s); load average {start_load} before, {end_load} after; cpu_dma_latency {dma}" + (f"; {notes}." if notes else ".")

if mode == "grid":
    rows = read_runs(raw, lambda kv: kv["row"], "server")
    print(f"Chat broadcast, {duration} s measured after {warmup} s warm-up, {head}\n")
    print("| load | server | deliveries/s asked / achieved | p50 ms | p99 ms | max ms | server CPU % | CPU µs/delivery | lost | errors | RSS MiB | threads | chatload CPU µs/delivery |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    def load(spec):
        u, s, r = spec.split(":")
        return f"{u} users, {s} × {float(r) / int(s):g} msg/s" if float(r) else f"{u} users, {s} senders unpaced"
    for spec, by in rows.items():
        for srv in [s for s in servers if s in by]:
            rs = by[srv]
            asked = med(rs, "asked_per_s")
            print(f"| {load(spec)} | {srv} | {asked:,.0f} / {med(rs, 'achieved_per_s'):,.0f} "
                  f"| {med(rs, 'p50_ms'):.2f} | {med(rs, 'p99_ms'):.2f} | {med(rs, 'max_ms'):.1f} "
                  f"| {med(rs, 'server_cpu_pct'):.0f} | {med(rs, 'server_cpu_us_per_delivery'):.2f} "
                  f"| {sum(int(r.get('lost', 0)) for r in rs)} | {errs(rs)} | {med(rs, 'server_rss_kb') / 1024:.1f} "
                  f"| {med(rs, 'server_threads'):.0f} | {med(rs, 'client_cpu_us_per_delivery'):.2f} |")
    print("\nlost, errors: totals over the runs. CPU: the server process's utime+stime in the measured window; "
          "per delivery: over the deliveries received in the window. chatload shares the cores; its own CPU per delivery is the last column.\n")
    if "new" in servers and "node" in servers:
        print("| load | new / node deliveries/s | new / node CPU % | new / node CPU µs/delivery | new p99 ms | target | verdict |")
        print("|---|---:|---:|---:|---:|---|---|")
        for spec, by in rows.items():
            a, b = by.get("new", []), by.get("node", [])
            if not a or not b:
                continue
            ratio = lambda f: med(a, f) / med(b, f) if med(b, f) else float("nan")
            d, c, cd, p99 = ratio("achieved_per_s"), ratio("server_cpu_pct"), ratio("server_cpu_us_per_delivery"), med(a, "p99_ms")
            keeps = med(a, "achieved_per_s") >= 0.99 * med(a, "asked_per_s")
            clean = errs(a) == 0 and sum(int(r.get("lost", 0)) for r in a) == 0
            u, s, r = spec.split(":")
            if float(r) == 0:
                target, ok = "≥ 3× node's deliveries/s", d >= 3
            elif int(u) >= 1000:
                target, ok = "≥ 99 % of asked, p99 ≤ 20 ms, CPU % ≤ node's", keeps and p99 <= 20 and c <= 1
            else:
                target, ok = "CPU µs/delivery ≤ node's, p99 ≤ 5 ms", cd <= 1 and p99 <= 5
            print(f"| {load(spec)} | {d:.2f}× | {c:.2f}× | {cd:.2f}× | {p99:.2f} | {target} | {'ok' if ok and clean else 'MISSED'} |")
elif mode == "hold":
    rows = read_runs(raw, lambda kv: "hold", "server")["hold"]
    print(f"Held users: {head}\n")
    print("| server | users logged in | one message to all others, ms | RSS MiB before → after | KiB per connection | threads | extra logins: upgraded / 503 / other | second message, ms | alive | errors |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|---:|")
    for srv in [s for s in servers if s in rows]:
        rs = rows[srv]
        print(f"| {srv} | {med(rs, 'logged_in'):.0f} of {med(rs, 'users'):.0f} | {med(rs, 'fanout_ms'):.1f} "
              f"| {med(rs, 'rss_before_kb') / 1024:.1f} → {med(rs, 'rss_after_kb') / 1024:.1f} | {med(rs, 'rss_per_conn_kib'):.1f} "
              f"| {med(rs, 'server_threads'):.0f} | {med(rs, 'extra_upgraded'):.0f} / {med(rs, 'extra_503'):.0f} / "
              f"{med(rs, 'extra') - med(rs, 'extra_upgraded') - med(rs, 'extra_503'):.0f} "
              f"| {med(rs, 'second_fanout_ms'):.1f} | {'yes' if all(r.get('alive') == '1' for r in rs) else 'NO'} | {errs(rs)} |")
    print("\nTarget (new chatserv, default limits, 10,000 users): all logged in, one message reaches all others within 1 s, "
          "≤ 32 KiB per connection, no error; past the limit 503s and the server goes on. "
          "Node has no connection limit, so its extra logins are upgraded.")
else:
    rows = read_runs(raw, lambda kv: "hs", "server")["hs"]
    print(f"Handshakes: {head}\n")
    print("| server | connections | handshakes/s (median of runs' medians) | slowest / fastest round | server CPU µs/handshake | errors |")
    print("|---|---:|---:|---:|---:|---:|")
    for srv in [s for s in servers if s in rows]:
        rs = rows[srv]
        print(f"| {srv} | {med(rs, 'connections'):.0f} | {med(rs, 'hs_per_s'):,.0f} | {min(float(r.get('hs_min', 0)) for r in rs):,.0f} / "
              f"{max(float(r.get('hs_max', 0)) for r in rs):,.0f} | {med(rs, 'server_cpu_us_per_handshake'):.0f} | {errs(rs)} |")
    print("\nA round: all connections opened and upgraded (distinct users) from chatload's opener threads, timed from the "
          "first connect to the last 101, held until then, then closed. Target: ≥ 16k/s at 1,000 connections (new chatserv).")
PY
echo "raw results: $RAW" >&2
