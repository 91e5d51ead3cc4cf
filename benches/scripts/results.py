"""Reading the raw RESULT lines that lib.sh's `load_run` appends, for the
tables of echo-bench.sh and deflate-echo.sh (imported by their embedded
Python; standard library only)."""

import statistics


def read_runs(raw, key, group):
    """{key(fields): {fields[group]: [fields, ...]}} over the lines of `raw`,
    each line's `name=value` pairs as a dict of strings."""
    rows = {}
    for line in open(raw):
        kv = dict(p.split("=", 1) for p in line.split() if "=" in p)
        rows.setdefault(key(kv), {}).setdefault(kv[group], []).append(kv)
    return rows


def median(runs, field, missing=None):
    """Median of `field` over `runs`; a run without it counts as `missing`,
    or is skipped when `missing` is None. NaN when nothing is left."""
    vals = [float(r.get(field, missing)) for r in runs if field in r or missing is not None]
    return statistics.median(vals) if vals else float("nan")


def errors(runs):
    """Errors plus mismatched bytes over `runs` (a run without a count is
    one error)."""
    return sum(int(float(r.get("errors", 1))) + int(float(r.get("mismatched_bytes", 0))) for r in runs)


def cpu_per_msg(runs, field="server_cpu_s"):
    """Median server CPU µs per echoed message (whole run, warm-up
    included): all of it, or with `field` server_user_s / server_sys_s the
    part spent in user space / in the kernel."""
    vals = [float(r.get(field, 0)) * 1e6 / float(r["all_messages"])
            for r in runs if float(r.get("all_messages", 0)) > 0]
    return statistics.median(vals) if vals else float("nan")
