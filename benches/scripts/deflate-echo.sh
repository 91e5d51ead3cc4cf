#!/usr/bin/env bash
# permessage-deflate (RFC 7692) echo benchmark: wsproto's echo server with
# and without deflate, echoing 1 KiB text messages that hold a chat-like
# JSON document (wsload --payload json: ids, user names, timestamps, numbers
# and free text; every echoed byte checked). Scenarios (connections x
# messages in flight): 1x1, 1x32, 64x32, each with deflate off and on, run
# alternately. Prints a Markdown table of medians on stdout; raw RESULT
# lines go to $OUT/raw.txt.
#
# Usage: benches/scripts/deflate-echo.sh [-d DURATION] [-w WARMUP] [-n RUNS] [-o OUTDIR]
#   -d  measured time per run (default 3s)      env DURATION
#   -w  warm-up per run (default 1s)            env WARMUP
#   -n  runs per scenario and mode; the table shows medians (default 1)  env RUNS
#   -o  directory for raw results (default a fresh temp dir)
#   SIZE (env, default 1024) is the message size; SCENARIOS (env) the
#   "conns:inflight" list, default "1:1 1:32 64:32".
#   NO_BUILD=1 skips `cargo build`; BIN=DIR picks the binaries' directory
#   (default $CARGO_TARGET_DIR/release, else target/release).
#
# Two servers run side by side: `echo_wsproto` (deflate off, its default)
# and `echo_wsproto --deflate`; the client offers deflate only to the
# second (`wsload --deflate`, which fails if it is not accepted).
#
# Wire bytes: what the client's sockets sent to and received from the
# kernel during the measured phase (TCP payload: WebSocket frame headers,
# masks and payloads, compressed when deflate is on; not TCP/IP headers,
# not the handshake, not the warm-up), per echoed message, both directions.
# The exit status is 1 if any run had an error or a mismatched byte.
set -euo pipefail

DURATION=${DURATION:-3s}
WARMUP=${WARMUP:-1s}
RUNS=${RUNS:-1}
SIZE=${SIZE:-1024}
SCENARIOS=${SCENARIOS:-1:1 1:32 64:32}
OUT=""
# The load generator is the measuring instrument: keep glibc's memcpy off
# `rep movsb` as echo-bench.sh does (see there); the servers run untouched.
MEMCPY_TUNABLE=${MEMCPY_TUNABLE:-glibc.cpu.x86_rep_movsb_threshold=4194304}
while getopts "d:w:n:o:h" opt; do
  case $opt in
    d) DURATION=$OPTARG ;;
    w) WARMUP=$OPTARG ;;
    n) RUNS=$OPTARG ;;
    o) OUT=$OPTARG ;;
    *) sed -n '2,29p' "$0"; exit 2 ;;
  esac
done

# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
bench_setup deflate-echo wsload echo_wsproto
start_server off "$BIN/echo_wsproto"
start_server on "$BIN/echo_wsproto" --deflate

run_one() { # mode conns inflight run
  local mode=$1 c=$2 w=$3 r=$4 flags=(--payload json)
  [[ $mode == on ]] && flags+=(--deflate)
  # The scenario is in the label too, for a run that printed no RESULT.
  load_run "$mode" "mode=$mode run=$r connections=$c inflight=$w" -c "$c" -w "$w" -s "$SIZE" "${flags[@]}"
}

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg); cpu_dma_latency $DMA; duration $DURATION, warm-up $WARMUP, runs $RUNS, size $SIZE" >&2
START_LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
for sc in $SCENARIOS; do
  c=${sc%%:*} w=${sc##*:}
  for r in $(seq "$RUNS"); do
    # Alternate which mode goes first, so slow drift hits both alike.
    if (( r % 2 )); then order="off on"; else order="on off"; fi
    for mode in $order; do run_one "$mode" "$c" "$w" "$r"; done
  done
done
END_LOAD=$(cut -d' ' -f1-3 /proc/loadavg)

PYTHONPATH=$(dirname "$0") python3 - "$RAW" "$START_LOAD" "$END_LOAD" "$DMA" "$DURATION" "$WARMUP" "$RUNS" "$SIZE" <<'PY'
import sys
from results import read_runs, errors as errs, cpu_per_msg, median as med
raw, start_load, end_load, dma, duration, warmup, runs, size = sys.argv[1:]
size = int(size)
rows = read_runs(raw, lambda kv: (int(kv["connections"]), int(kv["inflight"])), "mode")

print(f"permessage-deflate echo, {size} B JSON text messages: wsproto echo server, deflate off vs on "
      f"(default DeflateConfig: level 6, 32 KiB windows, context takeover). {duration} per run after "
      f"{warmup} warm-up, median of {runs}; load average {start_load} before, {end_load} after; "
      f"cpu_dma_latency {dma}.\n")
print("| conns × in flight | deflate | msgs/s | vs off | wire B/msg (sent+received) | compression (payload ÷ wire) | server CPU µs/msg | RTT p50/p99 µs | errors+mismatched bytes |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
bad = 0
for (c, w) in sorted(rows, key=lambda k: (k[0], k[1])):
    off_rate = med(rows[(c, w)].get("off", []), "msgs_per_s")
    for mode in ("off", "on"):
        rs = rows[(c, w)].get(mode, [])
        rate, wire = med(rs, "msgs_per_s"), med(rs, "wire_bytes_per_msg")
        ratio = 2 * size / wire if wire > 0 else float("nan")
        vs = f"{rate / off_rate:.2f}x" if off_rate > 0 else "-"
        e = errs(rs) if rs else 1
        bad += e > 0
        print(f"| {c} × {w} | {mode} | {rate:,.0f} | {vs} | {wire:,.0f} | {ratio:.2f} | {cpu_per_msg(rs):.1f} "
              f"| {med(rs, 'rtt_p50_us'):.0f} / {med(rs, 'rtt_p99_us'):.0f} | {e} |")
print(f"\nWire B/msg: bytes the client's sockets sent to plus received from the kernel during the "
      f"measured phase (frame headers, masks, payloads as sent; no TCP/IP headers, no handshake) per "
      f"echoed message; uncompressed, a {size} B echo is {2 * size} B of payload. Compression: "
      f"{2 * size} B ÷ wire B/msg. Server CPU µs/msg: the server process's user+system time over the "
      f"whole run (warm-up included) per echoed message.")
sys.exit(1 if bad else 0)
PY
echo "raw results: $RAW" >&2
