# Shared by echo-bench.sh and deflate-echo.sh (sourced, not run): the set-up
# of a load benchmark run, the echo servers' start-up, and one wsload run.

# bench_setup PREFIX BINARY... : build the binaries (unless NO_BUILD=1), set
# ROOT, BIN, OUT (a fresh temp dir unless already set), RAW (emptied), raise
# the descriptor limit, hold zero wake-up latency (DMA says whether), and
# kill the servers on exit. A BINARY written `example:NAME` is the wsproto
# example NAME (built into $BIN/examples/NAME).
bench_setup() {
  local prefix=$1 bins=() examples=() b
  shift
  for b in "$@"; do
    if [[ $b == example:* ]]; then examples+=(--example "${b#example:}"); else bins+=(--bin "$b"); fi
  done
  ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
  if [[ -z "${NO_BUILD:-}" ]]; then
    (cd "$ROOT" && cargo build --release -q -p benches "${bins[@]}")
    if [[ ${#examples[@]} -gt 0 ]]; then
      (cd "$ROOT" && cargo build --release -q -p wsproto "${examples[@]}")
    fi
  fi
  BIN=${BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release}
  OUT=${OUT:-$(mktemp -d "/tmp/$prefix.XXXXXX")}
  mkdir -p "$OUT"
  RAW=$OUT/raw.txt
  : > "$RAW"
  # 64 connections per server plus 64 client threads: room for descriptors.
  ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true
  # An idle core takes tens of microseconds to wake from a deep C-state,
  # which swamps a one-in-flight round trip; ask for zero wake-up latency
  # while measuring (PM QoS: the request holds while the file stays open).
  DMA="not held"
  if [[ -w /dev/cpu_dma_latency ]]; then
    exec 3>/dev/cpu_dma_latency
    printf '\x00\x00\x00\x00' >&3
    DMA="held at 0 us"
  fi
  PIDS=()
  trap bench_cleanup EXIT
}

bench_cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}

# start_server KEY COMMAND [ARGS...]: run COMMAND ARGS --listen 127.0.0.1:0
# in the background (with the caller's temporary environment), wait for its
# `listening ADDR` line, and set PORT_<KEY> and PID_<KEY>.
start_server() {
  local key=$1 log=$OUT/server-$1.out port=""
  shift
  "$@" --listen 127.0.0.1:0 > "$log" 2> "$OUT/server-$key.err" &
  PIDS+=($!)
  printf -v "PID_$key" '%s' "$!"
  for _ in $(seq 100); do
    port=$(sed -n 's/^listening .*:\([0-9][0-9]*\)$/\1/p' "$log")
    [[ -n $port ]] && break
    sleep 0.05
  done
  [[ -n $port ]] || { echo "$* did not start" >&2; exit 1; }
  printf -v "PORT_$key" '%s' "$port"
}

# CPU time a process has used so far, in clock ticks: "USER SYSTEM".
cpu_ticks() { awk '{ print $14, $15 }' "/proc/$1/stat"; }

# load_run KEY LABEL WSLOAD_ARGS...: one wsload run against server KEY with
# the load generator's memcpy tunable; appends "LABEL RESULT ... server_cpu_s=S
# server_user_s=U server_sys_s=K" (the server's CPU time during the run: all,
# in user space, in the kernel) to $RAW (and stderr). A failed run is
# recorded as an error, not fatal.
load_run() {
  local key=$1 label=$2 port_var="PORT_$1" pid_var="PID_$1" line status=0 t0 t1
  shift 2
  t0=$(cpu_ticks "${!pid_var}")
  # TLS runs (echo-bench.sh with TLS=1) set URL_SCHEME=wss, URL_HOST=localhost
  # and WSLOAD_TLS=(--ca-file CA).
  line=$(GLIBC_TUNABLES=$MEMCPY_TUNABLE "$BIN/wsload" \
           --url "${URL_SCHEME:-ws}://${URL_HOST:-127.0.0.1}:${!port_var}/" ${WSLOAD_TLS[@]+"${WSLOAD_TLS[@]}"} "$@" \
           --duration "$DURATION" --warmup "$WARMUP" 2>>"$OUT/wsload.err" | tail -n 1) || status=$?
  t1=$(cpu_ticks "${!pid_var}")
  [[ $line == RESULT* ]] || line="RESULT msgs_per_s=0 errors=1 failed_status=$status"
  line="$line $(awk -v a="$t0" -v b="$t1" -v hz="$(getconf CLK_TCK)" 'BEGIN {
    split(a, x, " "); split(b, y, " "); u = (y[1] - x[1]) / hz; k = (y[2] - x[2]) / hz
    printf "server_cpu_s=%.2f server_user_s=%.2f server_sys_s=%.2f", u + k, u, k }')"
  echo "$label $line" | tee -a "$RAW" >&2
}
