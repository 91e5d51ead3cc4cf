#!/usr/bin/env bash
# Browser test of the chatserv web page.
#
#   chatserv/tests/browser/run.sh [PATH/TO/chatserv]
#   CLUSTER=1 chatserv/tests/browser/run.sh [PATH/TO/chatserv]   (two nodes)
#
# Without an argument the server is built with `cargo build --release`.
# Extra server options can be given in $CHATSERV_ARGS (e.g. --no-deflate).
# With BROWSER_TLS=1 the server runs with --tls-cert/--tls-key (a test
# certificate made by the interop crate's gen_certs, found next to the
# chatserv binary or built) and the page is loaded over https; Chromium
# trusts exactly that certificate's key (--ignore-certificate-errors-spki-list
# with its SHA-256 SPKI hash), not every certificate.
# Needs node + npm and Debian's chromium (/usr/bin/chromium, or $CHROMIUM);
# runs `npm ci` here if node_modules is missing. Starts the server on a free
# 127.0.0.1 port (port 0; the bound address is read from its `started` log
# line), runs chat.test.mjs (which also starts servers of its own, with
# $CHATSERV_BIN, to test restarts), stops the server with SIGTERM. The last line
# printed is `browser: N passed, M failed`; the exit status is non-zero on
# any failure.
#
# With CLUSTER=1 it runs cluster.test.mjs instead: a redis-server of its own
# (on PATH; a free 127.0.0.1 port, nothing persisted, a temp dir) and two
# chatserv nodes on it (--node-id a and b, free ports); page 1 is loaded
# from node A, page 2 from node B, and the chat must work across them.
# Everything is stopped by PID on exit. Without redis-server it prints
# `SKIPPED` and exits 0. $CHATSERV_ARGS goes to both nodes, $CHATSERV_ARGS_A
# and $CHATSERV_ARGS_B to one each (e.g. CHATSERV_ARGS_B='--redis-prefix
# other' splits the cluster in two: the test must then fail). The last line
# is `browser cluster: N passed, M failed`.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
out="$here/out"
mkdir -p "$out"

cluster=${CLUSTER:-0}
label=browser
[ "$cluster" = 1 ] && label="browser cluster"
fail() {
    echo "run.sh: $*" >&2
    echo "$label: 0 passed, 1 failed"
    exit 1
}
if [ "$cluster" = 1 ] && ! command -v redis-server >/dev/null 2>&1; then
    echo "SKIPPED: browser cluster test: redis-server is not installed (apt-get install redis-server)"
    exit 0
fi

bin=${1:-}
if [ -z "$bin" ]; then
    (cd "$root" && cargo build --release -q -p chatserv) || fail "cargo build failed"
    bin="${CARGO_TARGET_DIR:-$root/target}/release/chatserv"
fi
[ -x "$bin" ] || fail "no chatserv binary at $bin"
if [ ! -d "$here/node_modules/playwright-core" ]; then
    (cd "$here" && npm ci --no-audit --no-fund >/dev/null 2>&1) || fail "npm ci failed"
fi

tls_args=()
scheme=http
spki=
if [ "${BROWSER_TLS:-0}" = 1 ]; then
    gen="$(dirname "$bin")/gen_certs"
    if [ ! -x "$gen" ]; then
        (cd "$root" && cargo build --release -q -p interop --bin gen_certs) || fail "cargo build gen_certs failed"
        gen="${CARGO_TARGET_DIR:-$root/target}/release/gen_certs"
    fi
    certs="$out/certs"
    "$gen" "$certs" || fail "gen_certs failed"
    spki=$(python3 -c 'import base64, hashlib, sys; print(base64.b64encode(hashlib.sha256(open(sys.argv[1], "rb").read()).digest()).decode())' "$certs/spki.der") \
        || fail "cannot hash the SPKI"
    tls_args=(--tls-cert "$certs/chain.pem" --tls-key "$certs/key.pem")
    scheme=https
fi

# The bound address from a chatserv log's `started` line, once it is there
# (waits up to 10 s while the process with PID $2 lives).
started_addr() {
    local addr=
    for _ in $(seq 1 100); do
        addr=$(sed -n 's/.*started.*listen="\([^"]*\)".*/\1/p' "$1" 2>/dev/null | head -n 1)
        [ -n "$addr" ] && break
        kill -0 "$2" 2>/dev/null || break
        sleep 0.1
    done
    echo "$addr"
}

if [ "$cluster" = 1 ]; then
    pids=()
    tmp=$(mktemp -d)
    cleanup() {
        local p
        for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
        for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
        # The logs are kept in out/ for a look afterwards.
        cp "$tmp"/*.log "$out/" 2>/dev/null
        rm -rf "$tmp"
    }
    trap cleanup EXIT
    rport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])') \
        || fail "no free port for redis-server"
    redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --dir "$tmp" \
        --daemonize no --protected-mode no >"$tmp/redis.log" 2>&1 &
    pids+=($!)
    up=
    for _ in $(seq 1 100); do
        if redis-cli -p "$rport" ping 2>/dev/null | grep -q PONG; then up=1; break; fi
        kill -0 "${pids[0]}" 2>/dev/null || break
        sleep 0.05
    done
    [ -n "$up" ] || { cat "$tmp/redis.log" >&2; fail "redis-server did not start"; }
    declare -A addr
    for id in a b; do
        nlog="$tmp/node-$id.log"
        extra_var="CHATSERV_ARGS_${id^^}"
        # shellcheck disable=SC2086 # CHATSERV_ARGS* are lists of options
        "$bin" --listen 127.0.0.1:0 --id "browser-$id" --redis "redis://127.0.0.1:$rport" \
            --node-id "$id" "${tls_args[@]}" ${CHATSERV_ARGS:-} ${!extra_var:-} 2>"$nlog" &
        pid=$!
        pids+=("$pid")
        addr[$id]=$(started_addr "$nlog" "$pid")
        [ -n "${addr[$id]}" ] || { cat "$nlog" >&2; fail "node $id did not start"; }
    done
    # Ready once each node's own heartbeat has come back through Redis.
    for id in a b; do
        for _ in $(seq 1 100); do
            grep -q "delivering through the stream" "$tmp/node-$id.log" && break
            sleep 0.05
        done
        grep -q "delivering through the stream" "$tmp/node-$id.log" \
            || { cat "$tmp/node-$id.log" >&2; fail "node $id is not delivering through redis"; }
    done
    (cd "$here" && CHAT_URL_A="$scheme://${addr[a]}/" CHAT_URL_B="$scheme://${addr[b]}/" \
        CHAT_SPKI="$spki" timeout 90 node cluster.test.mjs)
    status=$?
    trap - EXIT
    cleanup
    exit $status
fi

log="$out/server.log"
# shellcheck disable=SC2086 # CHATSERV_ARGS is a list of options
"$bin" --listen 127.0.0.1:0 --id browser-test "${tls_args[@]}" ${CHATSERV_ARGS:-} 2>"$log" &
server=$!
cleanup() { kill -TERM "$server" 2>/dev/null; wait "$server" 2>/dev/null; }
trap cleanup EXIT

addr=$(started_addr "$log" "$server")
[ -n "$addr" ] || { cat "$log" >&2; fail "server did not start"; }

(cd "$here" && CHAT_URL="$scheme://$addr/" CHAT_SPKI="$spki" CHATSERV_BIN="$bin" timeout 180 node chat.test.mjs)
status=$?
trap - EXIT
cleanup
exit $status
