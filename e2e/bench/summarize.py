#!/usr/bin/env python3
"""Summarize an e2e/bench/run.sh output directory into markdown tables.

A copy of the shared harness's summarize.py (../shared/bench/summarize.py), the
same reading of results.tsv and the raw wrk outputs, with (marked "sekisho:"):
names for the json16k and form1m workloads, "vs nginx-modsec" and "vs goref"
columns (median req/s ratios), and a headline table of req/s medians per
target x workload. The shared summarize.py still reads the same directories.

Reads OUT/results.tsv (+ the raw wrk outputs it points to) and OUT/idle_rss.tsv,
prints per-workload tables of medians over the runs:
  req/s (median, min-max), ratio to the direct backend, p50/p99 latency,
  CPU time of the target per request, peak RSS under load, non-2xx/errors,
  and the CPU that other processes on the machine used during the runs.
Usage: summarize.py OUT [OUT2 ...]   (several directories: their runs are pooled;
summary.csv is written into the first one)
"""
import csv
import os
import re
import statistics
import sys

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def ms(v):
    m = re.match(r"([\d.]+)(us|ms|s|m|h)$", v)
    return float(m.group(1)) * UNITS[m.group(2)] if m else float("nan")


def parse_wrk(path):
    r = {"rps": float("nan"), "p50": float("nan"), "p99": float("nan"), "avg": float("nan"), "requests": 0,
         "seconds": float("nan"), "non2xx": 0, "errors": 0}
    try:
        text = open(path).read()
    except OSError:
        return r
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if m:
        r["rps"] = float(m.group(1))
    m = re.search(r"^\s+Latency\s+(\S+)", text, re.M)   # sekisho: mean latency
    if m:
        r["avg"] = ms(m.group(1))
    for q in ("50", "99"):
        m = re.search(r"^\s+%s%%\s+(\S+)" % q, text, re.M)
        if m:
            r["p" + q] = ms(m.group(1))
    m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", text)
    if m:
        r["requests"] = int(m.group(1))
        r["seconds"] = ms(m.group(2) + m.group(3)) / 1e3
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    if m:
        r["non2xx"] = int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        r["errors"] = sum(int(x) for x in m.groups())
    return r


def fr(x):  # sekisho: req/s with enough decimals for slow targets
    return fmt(x, 0 if x != x or x >= 100 else 1 if x >= 1 else 2)


def med(xs):
    xs = [x for x in xs if x == x]
    return statistics.median(xs) if xs else float("nan")


def fmt(x, nd=0):
    if x != x:
        return "-"
    return f"{x:,.{nd}f}"


def main():
    outs = [a for a in sys.argv[1:] if not a.startswith("--")]
    out = outs[0]
    rows = []
    for d in outs:
        for row in csv.DictReader(open(os.path.join(d, "results.tsv")), delimiter="\t"):
            row["raw"] = os.path.join(d, row["raw"])
            rows.append(row)
    groups = {}
    order_w, order_t = [], []
    for row in rows:
        w, t = row["workload"], row["target"]
        if w not in order_w:
            order_w.append(w)
        if t not in order_t:
            order_t.append(t)
        r = parse_wrk(row["raw"])
        clk = float(row["clk_tck"])
        req = max(r["requests"], 1)
        cpu = int(row["cpu_ticks"]) / clk
        bcpu = int(row["backend_cpu_ticks"]) / clk
        ours = cpu + (0 if t == "direct" else bcpu) + int(row["driver_ticks"]) / clk
        busy = int(row["sys_busy_ticks"]) / clk
        secs = int(row["sys_total_ticks"]) / clk / (os.cpu_count() or 1)
        conns = int(row.get("conns") or 0)   # sekisho: Little's law, conns / mean latency (closed loop)
        r.update(
            lrps=conns * 1e3 / r["avg"] if conns and r["avg"] == r["avg"] and r["avg"] > 0 else float("nan"),
            conns=conns, duration=float(row.get("duration") or "nan"),
            cpu_us=cpu * 1e6 / req if row["cpu_ticks"] != "0" else float("nan"),
            bcpu_us=bcpu * 1e6 / req,
            rss=int(row["rss_peak_kb"]) / 1024 if row["rss_peak_kb"] != "0" else float("nan"),
            pss=int(row.get("pss_peak_kb") or 0) / 1024 if row.get("pss_peak_kb", "0") != "0" else float("nan"),
            foreign=max(busy - ours, 0) / secs * 100 if secs > 0 else float("nan"),
            steal=int(row["sys_steal_ticks"]) / clk / secs * 100 if secs > 0 else float("nan"),
        )
        groups.setdefault((w, t), []).append(r)
    idle = {}
    for d in outs:
        p = os.path.join(d, "idle_rss.tsv")
        if os.path.exists(p):
            for row in csv.DictReader(open(p), delimiter="\t"):
                pss = row.get("idle_pss_kb")
                idle.setdefault(row["target"], []).append(
                    (int(row["idle_rss_kb"]) / 1024, int(pss) / 1024 if pss else float("nan")))

    names = {"get": "GET small, browser headers (plain HTTP)",
             "post": "POST 4 KiB x-www-form-urlencoded (plain HTTP)",
             "tls": "GET small over HTTPS, TLS terminated by the target (keep-alive)",
             # sekisho: the added workloads
             "json16k": "POST 16 KiB application/json (plain HTTP)",
             "form1m": "POST 1 MiB x-www-form-urlencoded (plain HTTP)"}
    lines = []
    versions = os.path.join(out, "versions.txt")
    if os.path.exists(versions):
        v = dict(l.rstrip("\n").split(": ", 1) for l in open(versions) if ": " in l)
        lines.append(f"Load: {v.get('load', '?')}; pinning: {v.get('pinning', '?')}"
                     + (f"; pooled over {len(outs)} result directories" if len(outs) > 1 else ""))
        lines.append("")
    csvrows = []

    def pct(x):
        return fmt(x * 100, 1) + "%" if x == x else "-"

    def times(x):  # sekisho: a ratio as a multiplier, 2 significant digits (0.0031x, 0.95x, 12x, 1,700x)
        if x != x:
            return "-"
        if x >= 100:
            return fmt(x) + "x"
        return f"{float(f'{x:.2g}'):g}x"

    def ratio_to(w, t, ref):  # sekisho: median req/s of t / median req/s of ref
        a = med([r["rps"] for r in groups.get((w, t), [])])
        b = med([r["rps"] for r in groups.get((w, ref), [])])
        return a / b if a == a and b == b and b > 0 else float("nan")

    # sekisho: headline table, req/s medians (ratio vs nginx-modsec / vs goref)
    lines.append("### req/s, median per target x workload (x nginx-modsec's / x goref's)")
    lines.append("")
    lines.append("| target | " + " | ".join(order_w) + " |")
    lines.append("|---|" + "---:|" * len(order_w))
    for t in order_t:
        cells = []
        for w in order_w:
            rs = groups.get((w, t))
            if not rs:
                cells.append("-")
                continue
            v = med([r['rps'] for r in rs])
            cells.append(f"{fr(v)} ({times(ratio_to(w, t, 'nginx-modsec'))} / {times(ratio_to(w, t, 'goref'))})")
        lines.append(f"| {t} | " + " | ".join(cells) + " |")
    lines.append("")
    for w in order_w:
        base = med([r["rps"] for r in groups.get((w, "direct"), [])])
        lines.append(f"### {names.get(w, w)}")
        lines.append("")
        lines.append("| target | req/s (median) | min-max | vs direct | vs nginx-modsec | vs goref | conns / mean latency | conns x s | p50 ms | p99 ms | target CPU us/req | backend CPU us/req | CPU-derived req/s per core | peak RSS MiB | peak PSS MiB | requests | non-2xx | sock err | other CPU % |")
        lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for t in order_t:
            rs = groups.get((w, t))
            if not rs:
                continue
            rps = med([r["rps"] for r in rs])
            lo = min(r["rps"] for r in rs)
            hi = max(r["rps"] for r in rs)
            ratio = rps / base if base == base and base > 0 else float("nan")
            d = dict(workload=w, target=t, runs=len(rs), rps=rps, rps_min=lo, rps_max=hi, ratio=ratio,
                     vs_modsec=ratio_to(w, t, "nginx-modsec"), vs_goref=ratio_to(w, t, "goref"),
                     lrps=med([r["lrps"] for r in rs]), conns=rs[0]["conns"], duration=med([r["duration"] for r in rs]),
                     requests=sum(r["requests"] for r in rs),
                     p50=med([r["p50"] for r in rs]), p99=med([r["p99"] for r in rs]),
                     cpu_us=med([r["cpu_us"] for r in rs]), bcpu_us=med([r["bcpu_us"] for r in rs]),
                     rss=med([r["rss"] for r in rs]), pss=med([r["pss"] for r in rs]), non2xx=sum(r["non2xx"] for r in rs),
                     errors=sum(r["errors"] for r in rs), foreign=med([r["foreign"] for r in rs]),
                     steal=med([r["steal"] for r in rs]))
            per_req = d["cpu_us"] + (0 if t == "direct" else d["bcpu_us"])
            d["cpu_rps"] = 1e6 / per_req if per_req == per_req and per_req > 0 else float("nan")
            csvrows.append(d)
            lines.append("| {t} | {rps} | {lo}-{hi} | {ratio} | {vm} | {vg} | {lr} | {cd} | {p50} | {p99} | {cpu} | {bcpu} | {crps} | {rss} | {pss} | {nr} | {n} | {e} | {f} |".format(
                crps=fr(d["cpu_rps"]), vm=times(d["vs_modsec"]), vg=times(d["vs_goref"]),
                lr=fr(d["lrps"]), nr=d["requests"],
                cd=(f"{d['conns']} x {fmt(d['duration'])}" if d["conns"] else "-"),
                t=t, rps=fr(rps), lo=fr(lo), hi=fr(hi), ratio=fmt(ratio * 100, 1) + "%" if ratio == ratio else "-",
                p50=fmt(d["p50"], 2), p99=fmt(d["p99"], 2), cpu=fmt(d["cpu_us"], 1),
                bcpu="-" if t == "direct" else fmt(d["bcpu_us"], 1), rss=fmt(d["rss"], 1), pss=fmt(d["pss"], 1),
                n=d["non2xx"], e=d["errors"], f=fmt(d["foreign"], 0)))
        lines.append("")
    if idle:
        lines.append("### Idle memory after start-up (MiB, whole process tree; median over runs)")
        lines.append("")
        lines.append("| target | idle RSS MiB | idle PSS MiB |")
        lines.append("|---|---:|---:|")
        for t in order_t:
            if t in idle:
                lines.append(f"| {t} | {fmt(med([x[0] for x in idle[t]]), 1)} | {fmt(med([x[1] for x in idle[t]]), 1)} |")
        lines.append("")
    lines.append("Columns: medians over the runs; 'vs direct' = median req/s / direct backend median req/s; "
                 "'vs nginx-modsec', 'vs goref' = median req/s / that target's median req/s, as a multiplier; "
                 "'conns / mean latency' = req/s by Little's law for wrk's closed loop (not quantized by the window: "
                 "compare it with req/s where a run completes few requests, e.g. form1m on slow targets); "
                 "'conns x s' = wrk connections x seconds per run; 'requests' = completed over all runs; "
                 "CPU us/req = CPU time (user+sys) of the target's process tree / requests served; "
                 "RSS is summed over the process tree (nginx master+worker count shared pages twice), PSS splits shared pages; "
                 "'CPU-derived req/s per core' = 1e6 / (target + backend CPU us/req): what one dedicated core could "
                 "serve for proxy+backend, less sensitive to other load than measured req/s; "
                 "'other CPU %' = CPU (user+sys) used during the run by processes that are not part of the benchmark, "
                 "in % of one core (noise indicator; ~0 on a quiet machine).")
    print("\n".join(lines))
    if "--csv" in sys.argv or True:
        with open(os.path.join(out, "summary.csv"), "w", newline="") as f:
            if csvrows:
                wr = csv.DictWriter(f, fieldnames=list(csvrows[0].keys()))
                wr.writeheader()
                wr.writerows(csvrows)


if __name__ == "__main__":
    main()
