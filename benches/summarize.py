#!/usr/bin/env python3
"""Turn criterion's results into Markdown tables for the README.

Reads every `<criterion dir>/**/new/benchmark.json` (ids and throughput)
with the `estimates.json` beside it (times in ns), and prints:

1. for each cipher group (a group with a `wsproto` and a `tungstenite`
   function): one row per size with wsproto's median time and throughput,
   its speed-up over the naive loop and over tungstenite's algorithm, and
   its speed as a fraction of the constant-byte XOR (the memory limit);
2. for each UTF-8 group (`utf8_*`, benches/benches/utf8.rs): one row per
   size with the GiB/s of wsproto reading text and the same bytes as
   binary, of the validation inside wsproto (the time text takes over
   binary), of `std::str::from_utf8` and of simdutf8 (basic, compat) over
   the payload alone, and wsproto's text speed projected with simdutf8's
   compat API in place of std (binary time + the validation time inside
   wsproto scaled by compat's time over std's);
3. every other benchmark: median time, and GiB/s when it has a byte
   throughput, else ns per operation.

Usage:
    python3 benches/summarize.py [CRITERION_DIR] [--best] [--only PREFIX ...]

CRITERION_DIR defaults to $CARGO_TARGET_DIR/criterion, else target/criterion.
--best uses each benchmark's fastest sample instead of the median (steadier
on a busy machine; say so when you publish it). --only keeps groups whose
name starts with one of the prefixes. Standard library only.
"""

import json
import os
import sys
from pathlib import Path

GIB = 1024**3
BASELINES = ("naive", "tungstenite", "xor_const")


def load(root: Path, best: bool):
    """Yield (group, function, value, ns, bytes_or_None) per benchmark."""
    for bench_file in sorted(root.glob("**/new/benchmark.json")):
        new = bench_file.parent
        try:
            meta = json.loads(bench_file.read_text())
            est = json.loads((new / "estimates.json").read_text())
        except (OSError, json.JSONDecodeError) as e:
            print(f"skipping {new}: {e}", file=sys.stderr)
            continue
        ns = est["median"]["point_estimate"]
        if best:
            try:
                sample = json.loads((new / "sample.json").read_text())
                ns = min(t / n for t, n in zip(sample["times"], sample["iters"]))
            except (OSError, json.JSONDecodeError, KeyError, ValueError) as e:
                print(f"no samples for {new} ({e}); using the median", file=sys.stderr)
        throughput = meta.get("throughput") or {}
        nbytes = throughput.get("Bytes") or throughput.get("BytesDecimal")
        yield (
            meta["group_id"],
            meta.get("function_id") or "",
            meta.get("value_str") or "",
            ns,
            nbytes,
        )


def fmt_time(ns: float) -> str:
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns:.3g} ns"


def fmt_rate(ns: float, nbytes) -> str:
    if nbytes:
        return f"{nbytes / ns * 1e9 / GIB:.2f} GiB/s"
    return f"{ns:.0f} ns/op"


def size_key(value: str):
    """Sort '16B' < '125B' < '1KiB' < '1MiB'; anything else by name."""
    units = {"B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3}
    for unit in ("KiB", "MiB", "GiB", "B"):
        if value.endswith(unit) and value[: -len(unit)].isdigit():
            return (0, int(value[: -len(unit)]) * units[unit], value)
    return (1, 0, value)


UTF8_COLUMNS = ("wsproto_text", "wsproto_binary", "std_from_utf8", "simdutf8_basic", "simdutf8_compat")


def print_utf8(results, utf8_groups, stat):
    """The UTF-8 validation table (see the module docstring, item 2)."""
    print(f"### UTF-8 validation of text messages ({stat}, GiB/s of payload)\n")
    print(
        "| case | size | wsproto text | wsproto binary | validation in wsproto "
        "| std from_utf8 | simdutf8 basic | simdutf8 compat | compat ÷ std "
        "| text with compat (projected) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for g in utf8_groups:
        values = sorted({v for (gg, _, v) in results if gg == g}, key=size_key)
        for v in values:
            row = {f: results.get((g, f, v)) for f in UTF8_COLUMNS}

            def rate(name):
                r = row[name]
                return fmt_rate(r[0], r[1]).replace(" GiB/s", "") if r else "—"

            text, binary = row["wsproto_text"], row["wsproto_binary"]
            std, compat = row["std_from_utf8"], row["simdutf8_compat"]
            validation = projected = speedup = "—"
            if text and binary:
                extra = text[0] - binary[0]
                validation = f"{text[1] / extra * 1e9 / GIB:.2f}" if extra > 0 else "≈ free"
            if std and compat:
                speedup = f"{std[0] / compat[0]:.2f}×"
            if binary and compat and text and std:
                ns = binary[0] + max(text[0] - binary[0], 0) * compat[0] / std[0]
                projected = f"{text[1] / ns * 1e9 / GIB:.2f} ({text[0] / ns:.2f}×)"
            print(
                f"| {g} | {v} | {rate('wsproto_text')} | {rate('wsproto_binary')} | {validation} "
                f"| {rate('std_from_utf8')} | {rate('simdutf8_basic')} | {rate('simdutf8_compat')} "
                f"| {speedup} | {projected} |"
            )
    print(
        "\nValidation in wsproto: payload bytes over the time text takes beyond binary "
        "(noisy when that difference is small). Projected: binary time + the validation "
        "time inside wsproto × (compat time / std time), and its speed-up over wsproto "
        "text today. In the `_x16frag` rows "
        "the baselines validate incrementally at the fragment boundaries, as wsproto "
        "does (simdutf8 basic cannot).\n"
    )


def main(argv):
    args = [a for a in argv[1:]]
    best = "--best" in args
    only = []
    if "--only" in args:
        i = args.index("--only")
        only = args[i + 1 :]
        args = args[:i]
    args = [a for a in args if a != "--best"]
    if args:
        root = Path(args[0])
    else:
        target = os.environ.get("CARGO_TARGET_DIR", "target")
        root = Path(target) / "criterion"
    if not root.is_dir():
        print(f"no criterion results in {root}: run `cargo bench -p benches` first", file=sys.stderr)
        return 1

    results = {}
    for group, function, value, ns, nbytes in load(root, best):
        if only and not any(group.startswith(p) for p in only):
            continue
        results[(group, function, value)] = (ns, nbytes)
    if not results:
        print(f"no benchmarks found under {root}", file=sys.stderr)
        return 1

    stat = "fastest sample" if best else "median"
    groups = sorted({g for g, _, _ in results})
    cipher_groups = [
        g
        for g in groups
        if (g, "wsproto") in {(k[0], k[1]) for k in results}
        and (g, "tungstenite") in {(k[0], k[1]) for k in results}
    ]

    if cipher_groups:
        print(f"### Cipher: `apply_mask` ({stat})\n")
        print(
            "| case | size | wsproto | wsproto | × naive | × tungstenite "
            "| tungstenite | xor const | of xor-const speed |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for g in cipher_groups:
            values = sorted({v for (gg, f, v) in results if gg == g and f == "wsproto"}, key=size_key)
            for v in values:
                ns, nbytes = results[(g, "wsproto", v)]
                base = {b: results.get((g, b, v)) for b in BASELINES}

                def ratio(name):
                    r = base[name]
                    return f"{r[0] / ns:.2f}×" if r else "—"

                def rate(name):
                    r = base[name]
                    return fmt_rate(r[0], r[1]) if r else "—"

                limit = base["xor_const"]
                of_limit = f"{limit[0] / ns * 100:.0f} %" if limit else "—"
                print(
                    f"| {g} | {v} | {fmt_time(ns)} | {fmt_rate(ns, nbytes)} | {ratio('naive')} "
                    f"| {ratio('tungstenite')} | {rate('tungstenite')} | {rate('xor_const')} | {of_limit} |"
                )
        print(
            "\n× naive / × tungstenite: how many times faster wsproto is (their time / "
            "wsproto's). Of xor-const speed: above 100 % is faster than XORing every "
            "byte with one constant.\n"
        )

    utf8_groups = [g for g in groups if g.startswith("utf8_")]
    if utf8_groups:
        print_utf8(results, utf8_groups, stat)

    others = [k for k in results if k[0] not in cipher_groups and k[0] not in utf8_groups]
    if others:
        print(f"### Frames and handshake ({stat})\n")
        print("| group | benchmark | parameter | time | throughput |")
        print("|---|---|---|---:|---:|")
        for g, f, v in sorted(others, key=lambda k: (k[0], k[1], size_key(k[2]))):
            ns, nbytes = results[(g, f, v)]
            print(f"| {g} | {f} | {v} | {fmt_time(ns)} | {fmt_rate(ns, nbytes)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
