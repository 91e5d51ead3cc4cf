#!/usr/bin/env bash
# TLS handshakes/s: wsproto's TLS echo server (echo_wsproto --tls-cert,
# wsproto's TlsStream) against tungstenite's (echo_tungstenite --tls-cert,
# over rustls' StreamOwned): the same certificate (the interop crate's
# gen_certs: ECDSA P-256), the same rustls ServerConfig (ring provider), so
# the same negotiated version and cipher suite (checked: a run where they
# differ fails the table). The client is wsload --handshakes, the same for
# both: each connection is TCP connect, a full TLS handshake (no session
# resumption unless -r), the WebSocket upgrade, the close handshake, TCP
# close. The servers run alternately, RUNS runs each (rotating which goes
# first); the row shows medians. Prints a Markdown table on stdout; raw
# RESULT lines go to $OUT/raw.txt.
#
# Usage: benches/scripts/tls-handshakes.sh [-N HANDSHAKES] [-c THREADS] [-n RUNS] [-r] [-o OUTDIR]
#   -N  handshakes counted per run (default 5000)    env HANDSHAKES
#   -c  client threads opening connections (default 4)  env THREADS
#   -n  runs per server (default 3)                  env RUNS
#   -r  resumed handshakes (rustls' client session cache kept)
#   -o  directory for raw results (default a fresh temp dir)
#   NO_BUILD=1 skips `cargo build`; BIN=DIR picks the binaries' directory
#   (default $CARGO_TARGET_DIR/release, else target/release).
set -euo pipefail

HANDSHAKES=${HANDSHAKES:-5000}
THREADS=${THREADS:-4}
RUNS=${RUNS:-3}
RESUME=()
OUT=""
while getopts "N:c:n:ro:h" opt; do
  case $opt in
    N) HANDSHAKES=$OPTARG ;;
    c) THREADS=$OPTARG ;;
    n) RUNS=$OPTARG ;;
    r) RESUME=(--resume) ;;
    o) OUT=$OPTARG ;;
    *) sed -n '2,21p' "$0"; exit 2 ;;
  esac
done

# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
bench_setup tls-handshakes wsload echo_wsproto echo_tungstenite
[[ -n "${NO_BUILD:-}" ]] || (cd "$ROOT" && cargo build --release -q -p interop --bin gen_certs)
"$BIN/gen_certs" "$OUT/certs"
SERVER_TLS=(--tls-cert "$OUT/certs/chain.pem" --tls-key "$OUT/certs/key.pem" --stack 262144)
start_server wsproto "$BIN/echo_wsproto" "${SERVER_TLS[@]}"
start_server tungstenite "$BIN/echo_tungstenite" "${SERVER_TLS[@]}"

run_one() { # server run
  local key=$1 r=$2 port_var="PORT_$1" pid_var="PID_$1" line status=0
  line=$("$BIN/wsload" --url "wss://localhost:${!port_var}/" --ca-file "$OUT/certs/ca.pem" \
           --handshakes "$HANDSHAKES" -c "$THREADS" --server-pid "${!pid_var}" ${RESUME[@]+"${RESUME[@]}"} \
           2>>"$OUT/wsload.err" | tail -n 1) || status=$?
  [[ $line == RESULT* ]] || line="RESULT handshakes_per_s=0 errors=1 failed_status=$status"
  echo "server=$key run=$r load=$(cut -d' ' -f1 /proc/loadavg) $line" | tee -a "$RAW" >&2
}

START_LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
echo "load before: $START_LOAD; $HANDSHAKES handshakes x $RUNS runs per server, $THREADS client threads" >&2
for r in $(seq "$RUNS"); do
  if (( r % 2 )); then order=(wsproto tungstenite); else order=(tungstenite wsproto); fi
  for server in "${order[@]}"; do run_one "$server" "$r"; done
done
END_LOAD=$(cut -d' ' -f1-3 /proc/loadavg)

PYTHONPATH=$(dirname "$0") python3 - "$RAW" "$START_LOAD" "$END_LOAD" "$HANDSHAKES" "$THREADS" "$RUNS" "${#RESUME[@]}" <<'PY'
import statistics
import sys
from results import read_runs, median
raw, start_load, end_load, n, threads, runs, resume = sys.argv[1:]
rows = read_runs(raw, lambda kv: "all", "server")["all"]
a, b = rows.get("wsproto", []), rows.get("tungstenite", [])

def med(runs, field):
    return median(runs, field) if runs else float("nan")

def errs(runs):
    return sum(int(float(r.get("errors", 1))) for r in runs)

ra, rb = med(a, "handshakes_per_s"), med(b, "handshakes_per_s")
by_run = {r["run"]: float(r.get("handshakes_per_s", 0)) for r in b}
pairs = [float(r.get("handshakes_per_s", 0)) / by_run[r["run"]] for r in a if by_run.get(r["run"])]
paired = statistics.median(pairs) if pairs else float("nan")
suites = {(r.get("tls_version"), r.get("cipher")) for r in a + b}
same = len(suites) == 1 and None not in next(iter(suites))
suite = " ".join(next(iter(suites))) if same else "MIXED: " + ", ".join(map(str, sorted(suites, key=str)))
kind = "resumed" if resume != "0" else "full"
how = "resumed: rustls' client session cache kept" if resume != "0" else "full: no session resumption"
print(f"TLS handshakes ({how}): {n} per run from {threads} threads, "
      f"median of {runs} runs per server; load average {start_load} before, {end_load} after.\n")
print("| scenario | wsproto handshakes/s | tungstenite handshakes/s | ratio | paired ratio | wsproto p50/p99 µs | tungstenite p50/p99 µs | server CPU µs/handshake (ws/tung) | load generator CPU µs/handshake (ws/tung) | TLS | errors (ws/tung) |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|")
print(f"| TLS handshakes ({kind}), {threads} threads | {ra:,.0f} | {rb:,.0f} | {ra / rb if rb else float('inf'):.2f}x | {paired:.2f}x "
      f"| {med(a, 'upgrade_p50_us'):.0f} / {med(a, 'upgrade_p99_us'):.0f} | {med(b, 'upgrade_p50_us'):.0f} / {med(b, 'upgrade_p99_us'):.0f} "
      f"| {med(a, 'server_cpu_us_per_handshake'):.0f} / {med(b, 'server_cpu_us_per_handshake'):.0f} "
      f"| {med(a, 'client_cpu_us_per_handshake'):.0f} / {med(b, 'client_cpu_us_per_handshake'):.0f} "
      f"| {suite} | {errs(a)} / {errs(b)} |")
print("\nA handshake: TCP connect, TLS, WebSocket upgrade, close handshake, TCP close; p50/p99: connect to the 101 "
      "response. Server CPU: the server process's user+system time over the counted handshakes (10 ms ticks). "
      "Server and load generator share the machine's cores.")
sys.exit(0 if same and errs(a) + errs(b) == 0 else 1)
PY
echo "raw results: $RAW" >&2
