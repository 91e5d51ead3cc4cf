#!/usr/bin/env bash
# Build every cargo-fuzz target of wsproto and run each for SECONDS
# (default 60) on a temporary copy of its seed corpus, so the repository
# stays clean. Prints the executions each target reached and a final line
# "fuzz: N passed, M failed"; exits non-zero if any target crashed.
#
# Usage: fuzz/run-all.sh [SECONDS] [TARGET...]
# Env:   FUZZ_RSS_MB   memory limit per target in MB (default 256)
#        FUZZ_KEEP     if set, keep the temp corpora (path printed)
# Needs: rustup toolchain (stable works: RUSTC_BOOTSTRAP=1 is set for the
#        sanitizer flags), a C++ toolchain for libfuzzer-sys (g++ / clang),
#        cargo-fuzz (installed with `cargo install cargo-fuzz --locked` if
#        missing; needs crates.io).
set -uo pipefail

secs="${1:-60}"
shift || true
rss="${FUZZ_RSS_MB:-256}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root" || exit 2

if ! [[ "$secs" =~ ^[0-9]+$ ]]; then
    echo "usage: fuzz/run-all.sh [SECONDS] [TARGET...]" >&2
    exit 2
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz not found; installing it (cargo install cargo-fuzz --locked)" >&2
    cargo install cargo-fuzz --locked || exit 2
fi

# cargo-fuzz passes -Zsanitizer and friends; on a stable toolchain they
# need RUSTC_BOOTSTRAP (a nightly toolchain needs nothing).
if ! rustc --version | grep -q nightly; then
    export RUSTC_BOOTSTRAP=1
fi
# The fuzz crate has its own target dir (fuzz/target); do not inherit one
# meant for the workspace.
unset CARGO_TARGET_DIR

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi
if [ "${#targets[@]}" -eq 0 ]; then
    echo "no fuzz targets found" >&2
    exit 2
fi

echo "building ${#targets[@]} fuzz targets" >&2
build_args=()
if [ "${#targets[@]}" -eq 1 ]; then
    build_args=("${targets[0]}")
fi
if ! cargo fuzz build "${build_args[@]}"; then
    echo "fuzz: build failed" >&2
    exit 2
fi

host="$(rustc -vV | sed -n 's/^host: //p')"
bindir="fuzz/target/$host/release"

work="$(mktemp -d "${TMPDIR:-/tmp}/wsproto-fuzz.XXXXXX")"
if [ -z "${FUZZ_KEEP:-}" ]; then
    trap 'rm -rf "$work"' EXIT
else
    echo "temp corpora kept in $work" >&2
fi

passed=0
failed=0
summary=()
for t in "${targets[@]}"; do
    corpus="$work/$t"
    mkdir -p "$corpus" "fuzz/artifacts/$t"
    if [ -d "fuzz/corpus/$t" ]; then
        cp fuzz/corpus/"$t"/seed-* "$corpus"/ 2>/dev/null || true
    fi
    log="$work/$t.log"
    echo "== $t: ${secs}s, rss limit ${rss} MB, $(ls "$corpus" | wc -l) seeds" >&2
    # ASan keeps freed memory in a quarantine (256 MB by default) that
    # counts toward the RSS limit; a smaller one keeps -rss_limit_mb about
    # our memory, not ASan's (the deflate target frees large windows).
    # Run the binaries built above (not `cargo fuzz run`, which would
    # rebuild if sources changed meanwhile). -timeout: one input taking
    # 10 s is a hang. Artifacts (crash-*, oom-*, timeout-*) go to
    # fuzz/artifacts/<target>/, as with `cargo fuzz run`.
    ASAN_OPTIONS="${ASAN_OPTIONS:-detect_odr_violation=0:quarantine_size_mb=32}" "$bindir/$t" \
        -artifact_prefix="fuzz/artifacts/$t/" \
        -max_total_time="$secs" -rss_limit_mb="$rss" -timeout=10 \
        -print_final_stats=1 "$corpus" >"$log" 2>&1
    rc=$?
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
    if [ -z "$execs" ]; then
        execs="$(sed -n 's/^#\([0-9]*\)[[:space:]]*DONE.*/\1/p' "$log" | tail -n 1)"
    fi
    execs="${execs:-?}"
    if [ "$rc" -eq 0 ]; then
        passed=$((passed + 1))
        line="$t: ok, $execs executions in ${secs}s"
    else
        failed=$((failed + 1))
        artifact="$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)"
        line="$t: FAILED (exit $rc) after $execs executions; artifact: ${artifact:-none}"
        grep -m 5 -E "panicked at|ERROR: libFuzzer|ERROR: AddressSanitizer" "$log" >&2 || true
        tail -n 40 "$log" >&2
    fi
    echo "$line"
    summary+=("$line")
done

echo
for line in "${summary[@]}"; do echo "  $line"; done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
