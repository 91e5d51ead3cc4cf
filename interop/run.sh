#!/usr/bin/env bash
# Interop tests of wsproto against two independent WebSocket implementations:
# Python `websockets` and Node `ws`, in both directions:
#
#   python server  x wsproto client   (interop/python/echo_server.py  + echo_client binary)
#   wsproto server x python client    (autobahn_server example + interop/python/client_test.py)
#   node server    x wsproto client   (interop/node/echo_server.mjs   + echo_client binary)
#   wsproto server x node client      (autobahn_server example + interop/node/client_test.mjs)
#
# 28 combinations: these four with compression off on the Python/Node side;
# then with permessage-deflate (RFC 7692) in each pairing: the third-party
# library's default offer/acceptance, a variant with no_context_takeover
# both ways and reduced windows (imposed by the Python/Node server, offered
# by the Python/Node client, offered by the wsproto client), and the wsproto
# client compressing every message (--min-compress-size 0; the wsproto
# server, autobahn_server, always does). Each deflate run checks the
# negotiated parameters against what the configuration must yield
# (--expect-params). Last, a negative check: Python and Node clients
# offering deflate to a wsproto server that refuses it (chatserv
# --no-deflate, since autobahn_server always accepts) must see no
# extension; the Python client against chatserv with deflate on is the
# control that the check can tell.
#
# Then over TLS (wss://, a test CA and certificate made by the interop
# crate's gen_certs): Python and Node servers (TLS by their own stacks)
# with the wsproto client, the wsproto TLS echo server (the tls_echo_server
# example) with the Python and Node clients, with and without
# permessage-deflate, and chatserv --tls-cert with the Python client.
#
# Usage: bash interop/run.sh     (from anywhere; needs python3 >= 3.11 with venv,
#                                 node >= 18 with npm, cargo)
#
# Installs what is missing: a venv in interop/python/.venv with the pinned
# requirements, and `npm ci` in interop/node. Builds the two wsproto examples
# and chatserv in release mode (honours CARGO_TARGET_DIR). Every server listens on
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

(cd "$ROOT" && cargo build --release --quiet -p wsproto --example autobahn_server \
    && cargo build --release --quiet -p wsproto --features tls --example tls_echo_server \
    && cargo build --release --quiet -p interop --bin echo_client --bin gen_certs \
    && cargo build --release --quiet -p chatserv --bin chatserv) || die "cargo build failed"
TARGET_DIR="$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps \
    | "$PY" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')" \
    || die "cannot find the cargo target directory"
ECHO_CLIENT="$TARGET_DIR/release/echo_client"
WSPROTO_SERVER="$TARGET_DIR/release/examples/autobahn_server"
CHATSERV="$TARGET_DIR/release/chatserv"
WSPROTO_TLS_SERVER="$TARGET_DIR/release/examples/tls_echo_server"
[ -x "$ECHO_CLIENT" ] && [ -x "$WSPROTO_SERVER" ] && [ -x "$CHATSERV" ] \
    && [ -x "$WSPROTO_TLS_SERVER" ] || die "built binaries not found in $TARGET_DIR"
# The TLS runs' test CA (ca.pem) and certificate (chain.pem, key.pem).
CERTS="$LOGDIR/certs"
"$TARGET_DIR/release/gen_certs" "$CERTS" || die "gen_certs failed"
CA="$CERTS/ca.pem"
TLS_FILES=(--tls-cert "$CERTS/chain.pem" --tls-key "$CERTS/key.pem")

# ---- servers ------------------------------------------------------------------

# wait_listening LOG PID: wait (up to 10 s) for the server's
# "listening on 127.0.0.1:PORT" line (chatserv: `started ... listen="127.0.0.1:PORT"`);
# print PORT. Fails if the server exits.
wait_listening() {
    local log=$1 pid=$2 i port
    for ((i = 0; i < 100; i++)); do
        port="$(sed -n 's/.*\(listening on \|listen="\)127\.0\.0\.1:\([0-9][0-9]*\).*/\2/p' "$log" | head -n1)"
        if [ -n "$port" ] && [ "$port" != 0 ]; then
            echo "$port"
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# start_server NAME [ARGS...]: start the named server (python, node,
# wsproto or chatserv) with ARGS; sets SERVER_PID and SERVER_PORT, logs to
# $LOGDIR/NAME.log.
start_server() {
    local name=$1 log="$LOGDIR/$1.log" attempt port
    shift
    : >"$log"
    case $name in
        python | node | chatserv)
            case $name in
                python) "$PY" "$HERE/python/echo_server.py" 0 --lifetime "$SERVER_LIFETIME" "$@" >"$log" 2>&1 & ;;
                node) node "$HERE/node/echo_server.mjs" 0 --lifetime "$SERVER_LIFETIME" "$@" >"$log" 2>&1 & ;;
                chatserv) timeout "$SERVER_LIFETIME" "$CHATSERV" --listen 127.0.0.1:0 "$@" >"$log" 2>&1 & ;;
            esac
            SERVER_PID=$!
            SERVER_PORT="$(wait_listening "$log" "$SERVER_PID")" && return 0
            ;;
        wsproto | wsproto-tls)
            [ $# -eq 0 ] || { echo "interop: the wsproto server takes no options" >&2; return 1; }
            # autobahn_server takes a fixed address: ask the OS for a free
            # port, and retry if another process took it in between.
            for attempt in 1 2 3 4 5; do
                port="$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
                if [ "$name" = wsproto-tls ]; then
                    timeout "$SERVER_LIFETIME" "$WSPROTO_TLS_SERVER" "127.0.0.1:$port" \
                        "$CERTS/chain.pem" "$CERTS/key.pem" >"$log" 2>&1 &
                else
                    timeout "$SERVER_LIFETIME" "$WSPROTO_SERVER" "127.0.0.1:$port" >"$log" 2>&1 &
                fi
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

# ---- combinations -------------------------------------------------------------

PASSED=0
FAILED=0
SUMMARY=()

# combination LABEL SERVER [SERVER_ARGS...] -- CLIENT [CLIENT_ARGS...]:
# run one pairing and record the result. The client gets the server's URL
# as its first argument (chatserv: with ?user=interop, which it requires).
combination() {
    local label=$1 server=$2 client out rc checks
    shift 2
    local server_args=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do
        server_args+=("$1")
        shift
    done
    shift # the --
    client=$1
    shift
    echo "interop: --- $label"
    if ! start_server "$server" "${server_args[@]}"; then
        FAILED=$((FAILED + 1))
        SUMMARY+=("FAIL $label: server did not start")
        return
    fi
    local url="ws://127.0.0.1:$SERVER_PORT/"
    # TLS servers: wss:// to the name in the test certificate.
    if [ "$server" = wsproto-tls ] || [[ " ${server_args[*]} " == *" --tls-cert "* ]]; then
        url="wss://localhost:$SERVER_PORT/"
    fi
    [ "$server" = chatserv ] && url="${url}?user=interop"
    out="$LOGDIR/run.out"
    case $client in
        wsproto) timeout "$CLIENT_TIMEOUT" "$ECHO_CLIENT" "$url" "$@" >"$out" 2>&1 ;;
        python) timeout "$CLIENT_TIMEOUT" "$PY" "$HERE/python/client_test.py" "$url" "$@" >"$out" 2>&1 ;;
        node) timeout "$CLIENT_TIMEOUT" node "$HERE/node/client_test.mjs" "$url" "$@" >"$out" 2>&1 ;;
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

# Negotiation variants: no context takeover both ways and reduced windows,
# imposed by the third-party server or offered by the third-party client.
VARIANT=(--server-no-context-takeover --client-no-context-takeover
    --server-max-window-bits 10 --client-max-window-bits 9)
VARIANT_PARAMS="server_no_context_takeover client_no_context_takeover server_max_window_bits=10 client_max_window_bits=9"
# The same flags offered by the wsproto client (other sizes, so a mix-up shows).
CLIENT_VARIANT=(--server-no-context-takeover --client-no-context-takeover
    --server-max-window-bits 9 --client-max-window-bits 10)
CLIENT_VARIANT_PARAMS="server_no_context_takeover client_no_context_takeover server_max_window_bits=9 client_max_window_bits=10"
# wsproto (autobahn_server) answers a plain offer with plain permessage-deflate.
FULL_WINDOWS="server_max_window_bits=15 client_max_window_bits=15"

# Compression off on the third-party side.
combination "python server x wsproto client" python -- wsproto --no-deflate
combination "wsproto server x python client" wsproto -- python
combination "node server x wsproto client" node -- wsproto --no-deflate
combination "wsproto server x node client" wsproto -- node

# permessage-deflate with Python websockets (its default: 2^12 windows both ways).
combination "python deflate server x wsproto client" \
    python --compression deflate -- \
    wsproto --deflate --expect-params "server_max_window_bits=12 client_max_window_bits=12"
combination "python deflate server (no takeover, windows 10/9) x wsproto client" \
    python --compression deflate "${VARIANT[@]}" -- \
    wsproto --deflate --expect-params "$VARIANT_PARAMS"
combination "python deflate server x wsproto client (offers no takeover, windows 9/10)" \
    python --compression deflate -- \
    wsproto --deflate "${CLIENT_VARIANT[@]}" --expect-params "$CLIENT_VARIANT_PARAMS"
combination "python deflate server x wsproto client (compresses every message)" \
    python --compression deflate -- \
    wsproto --deflate --min-compress-size 0 --expect-params "server_max_window_bits=12 client_max_window_bits=12"
combination "wsproto server x python deflate client" \
    wsproto -- python --compression deflate --expect-params "$FULL_WINDOWS"
combination "wsproto server x python deflate client (offers no takeover, windows 10/9)" \
    wsproto -- python --compression deflate "${VARIANT[@]}" --expect-params "$VARIANT_PARAMS"

# permessage-deflate with Node ws (threshold 0: it compresses every message).
combination "node deflate server x wsproto client" \
    node --compression deflate -- wsproto --deflate --expect-params "$FULL_WINDOWS"
combination "node deflate server (no takeover, windows 10/9) x wsproto client" \
    node --compression deflate "${VARIANT[@]}" -- \
    wsproto --deflate --expect-params "$VARIANT_PARAMS"
combination "node deflate server x wsproto client (offers no takeover, windows 9/10)" \
    node --compression deflate -- \
    wsproto --deflate "${CLIENT_VARIANT[@]}" --expect-params "$CLIENT_VARIANT_PARAMS"
combination "node deflate server x wsproto client (compresses every message)" \
    node --compression deflate -- \
    wsproto --deflate --min-compress-size 0 --expect-params "$FULL_WINDOWS"
combination "wsproto server x node deflate client" \
    wsproto -- node --compression deflate --expect-params "$FULL_WINDOWS"
# ws reports client_no_context_takeover only when the server's response
# confirms it (wsproto's does not; it need not, RFC 7692 §7.1.1.2).
combination "wsproto server x node deflate client (offers no takeover, windows 10/9)" \
    wsproto -- node --compression deflate "${VARIANT[@]}" \
    --expect-params "server_no_context_takeover server_max_window_bits=10 client_max_window_bits=9"

# Negative check: a wsproto server with deflate refused must not negotiate
# it; the control run shows that the same check sees it when accepted.
combination "chatserv --no-deflate x python deflate client: no extension" \
    chatserv --no-deflate -- python --compression deflate --handshake-only --expect-params none
combination "chatserv --no-deflate x node deflate client: no extension" \
    chatserv --no-deflate -- node --compression deflate --handshake-only --expect-params none
combination "chatserv (deflate on) x python deflate client: control" \
    chatserv -- python --compression deflate --handshake-only --expect-params "$FULL_WINDOWS"

# Over TLS (wss://).
combination "python TLS server x wsproto client" \
    python "${TLS_FILES[@]}" -- wsproto --no-deflate --ca-file "$CA"
combination "python TLS deflate server x wsproto client" \
    python --compression deflate "${TLS_FILES[@]}" -- \
    wsproto --deflate --ca-file "$CA" --expect-params "server_max_window_bits=12 client_max_window_bits=12"
combination "wsproto TLS server x python client" wsproto-tls -- python --ca-file "$CA"
combination "wsproto TLS server x python deflate client" \
    wsproto-tls -- python --compression deflate --ca-file "$CA" --expect-params "$FULL_WINDOWS"
combination "node TLS server x wsproto client" \
    node "${TLS_FILES[@]}" -- wsproto --no-deflate --ca-file "$CA"
combination "node TLS deflate server x wsproto client" \
    node --compression deflate "${TLS_FILES[@]}" -- \
    wsproto --deflate --ca-file "$CA" --expect-params "$FULL_WINDOWS"
combination "wsproto TLS server x node client" wsproto-tls -- node --ca-file "$CA"
combination "wsproto TLS server x node deflate client" \
    wsproto-tls -- node --compression deflate --ca-file "$CA" --expect-params "$FULL_WINDOWS"
combination "chatserv --tls-cert x python deflate client" \
    chatserv "${TLS_FILES[@]}" -- \
    python --compression deflate --handshake-only --ca-file "$CA" --expect-params "$FULL_WINDOWS"

echo "interop: ---"
for line in "${SUMMARY[@]}"; do
    echo "interop: $line"
done
echo "interop: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
