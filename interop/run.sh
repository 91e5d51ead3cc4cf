#!/usr/bin/env bash
# Interop tests of wsproto against two independent WebSocket implementations:
# Python `websockets` and Node `ws`, in both directions:
#
#   python server  x wsproto client   (interop/python/echo_server.py  + echo_client example)
#   wsproto server x python client    (autobahn_server example + interop/python/client_test.py)
#   node server    x wsproto client   (interop/node/echo_server.mjs   + echo_client example)
#   wsproto server x node client      (autobahn_server example + interop/node/client_test.mjs)
#
# Usage: bash interop/run.sh     (from anywhere; needs python3 >= 3.11 with venv,
#                                 node >= 18 with npm, cargo)
#
# Installs what is missing: a venv in interop/python/.venv with the pinned
# requirements, and `npm ci` in interop/node. Builds the two wsproto examples
# in release mode (honours CARGO_TARGET_DIR). Every server listens on
# 127.0.0.1 on a free port, is stopped on exit (trap) and also stops by itself
# after 300 s; every client runs under `timeout`. Prints each client's check
# lines, one summary line per combination, and finally
# `interop: N passed, M failed`; exits non-zero if any combination failed.

set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
PYTHON="${PYTHON:-python3}"
CLIENT_TIMEOUT=180   # seconds for one client run (they take about one second)
SERVER_LIFETIME=300  # seconds after which a server stops by itself
LOGDIR="$(mktemp -d "${TMPDIR:-/tmp}/wsproto-interop.XXXXXX")"

# At most one server runs at a time; its pid is kept until it is stopped.
SERVER_PID=""
stop_server() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null
        wait "$SERVER_PID" 2>/dev/null
        SERVER_PID=""
    fi
    return 0
}
cleanup() {
    stop_server
    rm -rf "$LOGDIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() {
    echo "interop: $*" >&2
    echo "interop: 0 passed, 1 failed"
    exit 1
}

# ---- install what is missing -------------------------------------------------

VENV="$HERE/python/.venv"
REQ="$HERE/python/requirements.txt"
STAMP="$VENV/.requirements.sha256"
want_req="$(sha256sum "$REQ" | cut -d' ' -f1)"
if ! "$VENV/bin/python" -c 'import websockets' 2>/dev/null \
    || [ "$(cat "$STAMP" 2>/dev/null)" != "$want_req" ]; then
    echo "interop: installing Python requirements into $VENV" >&2
    "$PYTHON" -m venv "$VENV" || die "cannot create a venv with $PYTHON"
    "$VENV/bin/pip" install --disable-pip-version-check --quiet -r "$REQ" \
        || die "pip install -r $REQ failed"
    echo "$want_req" > "$STAMP"
fi
PY="$VENV/bin/python"

command -v node >/dev/null || die "node is not installed"
command -v npm >/dev/null || die "npm is not installed"
if ! (cd "$HERE/node" && node -e '
        const want = require("./package-lock.json").packages["node_modules/ws"].version;
        const have = require("./node_modules/ws/package.json").version;
        process.exit(want === have ? 0 : 1);' 2>/dev/null); then
    echo "interop: npm ci in $HERE/node" >&2
    (cd "$HERE/node" && npm ci --no-audit --no-fund --loglevel=error) || die "npm ci failed"
fi

# ---- build the wsproto side -------------------------------------------------

(cd "$ROOT" && cargo build --release --quiet -p wsproto \
    --example echo_client --example autobahn_server) || die "cargo build failed"
TARGET_DIR="$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps \
    | "$PY" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')" \
    || die "cannot find the cargo target directory"
ECHO_CLIENT="$TARGET_DIR/release/examples/echo_client"
WSPROTO_SERVER="$TARGET_DIR/release/examples/autobahn_server"
[ -x "$ECHO_CLIENT" ] && [ -x "$WSPROTO_SERVER" ] || die "built examples not found in $TARGET_DIR"

# ---- servers ------------------------------------------------------------------

# wait_listening LOG PID: wait (up to 10 s) for the server's
# "listening on 127.0.0.1:PORT" line; print PORT. Fails if the server exits.
wait_listening() {
    local log=$1 pid=$2 i port
    for ((i = 0; i < 100; i++)); do
        port="$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$log" | head -n1)"
        if [ -n "$port" ] && [ "$port" != 0 ]; then
            echo "$port"
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# start_server NAME: start the named echo server (python, node or wsproto);
# sets SERVER_PID and SERVER_PORT, logs to $LOGDIR/NAME.log.
start_server() {
    local name=$1 log="$LOGDIR/$1.log" attempt port
    : >"$log"
    case $name in
        python | node)
            if [ "$name" = python ]; then
                "$PY" "$HERE/python/echo_server.py" 0 --lifetime "$SERVER_LIFETIME" >"$log" 2>&1 &
            else
                node "$HERE/node/echo_server.mjs" 0 --lifetime "$SERVER_LIFETIME" >"$log" 2>&1 &
            fi
            SERVER_PID=$!
            SERVER_PORT="$(wait_listening "$log" "$SERVER_PID")" && return 0
            ;;
        wsproto)
            # autobahn_server takes a fixed address: ask the OS for a free
            # port, and retry if another process took it in between.
            for attempt in 1 2 3 4 5; do
                port="$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
                timeout "$SERVER_LIFETIME" "$WSPROTO_SERVER" "127.0.0.1:$port" >"$log" 2>&1 &
                SERVER_PID=$!
                if wait_listening "$log" "$SERVER_PID" >/dev/null; then
                    SERVER_PORT=$port
                    return 0
                fi
                stop_server
            done
            ;;
    esac
    stop_server
    echo "interop: $name server did not start:" >&2
    sed 's/^/  server| /' "$log" >&2
    return 1
}

# ---- the four combinations ----------------------------------------------------

PASSED=0
FAILED=0
SUMMARY=()

# combination SERVER CLIENT: run one pairing and record the result.
combination() {
    local server=$1 client=$2 label="$1 server x $2 client" out rc checks
    echo "interop: --- $label"
    if ! start_server "$server"; then
        FAILED=$((FAILED + 1))
        SUMMARY+=("FAIL $label: server did not start")
        return
    fi
    local url="ws://127.0.0.1:$SERVER_PORT/"
    out="$LOGDIR/$server-$client.out"
    case $client in
        wsproto) timeout "$CLIENT_TIMEOUT" "$ECHO_CLIENT" "$url" >"$out" 2>&1 ;;
        python) timeout "$CLIENT_TIMEOUT" "$PY" "$HERE/python/client_test.py" "$url" >"$out" 2>&1 ;;
        node) timeout "$CLIENT_TIMEOUT" node "$HERE/node/client_test.mjs" "$url" >"$out" 2>&1 ;;
    esac
    rc=$?
    stop_server
    sed 's/^/  | /' "$out"
    checks="$(grep -c '^ok ' "$out")"
    if [ "$rc" -eq 0 ] && [ "$checks" -gt 0 ] && ! grep -q '^FAIL' "$out"; then
        PASSED=$((PASSED + 1))
        SUMMARY+=("PASS $label ($checks checks)")
    else
        FAILED=$((FAILED + 1))
        [ "$rc" -eq 124 ] && echo "interop: client timed out after ${CLIENT_TIMEOUT}s"
        echo "interop: $server server log:"
        sed 's/^/  server| /' "$LOGDIR/$server.log"
        SUMMARY+=("FAIL $label (exit $rc, $(grep -c '^FAIL' "$out") failed checks, $checks ok)")
    fi
}

combination python wsproto
combination wsproto python
combination node wsproto
combination wsproto node

echo "interop: ---"
for line in "${SUMMARY[@]}"; do
    echo "interop: $line"
done
echo "interop: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
