#!/usr/bin/env bash
# Browser test of the chatserv web page.
#
#   chatserv/tests/browser/run.sh [PATH/TO/chatserv]
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
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
out="$here/out"
mkdir -p "$out"

fail() {
    echo "run.sh: $*" >&2
    echo "browser: 0 passed, 1 failed"
    exit 1
}

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

log="$out/server.log"
# shellcheck disable=SC2086 # CHATSERV_ARGS is a list of options
"$bin" --listen 127.0.0.1:0 --id browser-test "${tls_args[@]}" ${CHATSERV_ARGS:-} 2>"$log" &
server=$!
cleanup() { kill -TERM "$server" 2>/dev/null; wait "$server" 2>/dev/null; }
trap cleanup EXIT

addr=
for _ in $(seq 1 100); do
    addr=$(sed -n 's/.*started.*listen="\([^"]*\)".*/\1/p' "$log" | head -n 1)
    [ -n "$addr" ] && break
    kill -0 "$server" 2>/dev/null || break
    sleep 0.1
done
[ -n "$addr" ] || { cat "$log" >&2; fail "server did not start"; }

(cd "$here" && CHAT_URL="$scheme://$addr/" CHAT_SPKI="$spki" CHATSERV_BIN="$bin" timeout 180 node chat.test.mjs)
status=$?
trap - EXIT
cleanup
exit $status
