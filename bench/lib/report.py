#!/usr/bin/env python3
"""Turn the runner's raw measurements into the markdown tables of bench/README.md.

report.py WORKDIR   reads WORKDIR/meta.txt, runs.tsv, idle.tsv (written by run.sh)
                    and prints markdown on stdout.

runs.tsv columns: workers proxy mode round requests duration_us p50_us p99_us cpu_us errors
                  upstream_cpu_us wrk_cpu_us other_cpu_us
idle.tsv columns: workers proxy mode conns ok rss_before rss_after bytes_per_conn

Each figure is the median over rounds. Each ratio is the median over rounds of
(this proxy / nginx) taken within one round, so drift between rounds (thermal, other
load on the machine) cancels instead of leaking into the ratio.
"""
import os
import statistics
import sys

REFERENCE = ("nginx", "proxy")
NOISY_PERCENT = 10
ORDER = {"ringrelay": 0, "nginx": 1, "haproxy": 2}
MODE_ORDER = {"relay": 0, "gateway": 1}


def read_tsv(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        lines = [line.rstrip("\n").split("\t") for line in f if line.strip()]
    header, rows = lines[0], lines[1:]
    return [dict(zip(header, row)) for row in rows]


def fmt_latency(us):
    return f"{us:.0f} µs" if us < 1000 else f"{us / 1000:.2f} ms"


def fmt_ratio(value):
    return "—" if value is None else f"{value:.2f}×"


def run_metrics(row):
    requests = int(row["requests"])
    seconds = int(row["duration_us"]) / 1e6
    return {
        "rps": requests / seconds if seconds else 0.0,
        "p50": float(row["p50_us"]),
        "p99": float(row["p99_us"]),
        "cpu": int(row["cpu_us"]) / requests if requests else float("nan"),
        "errors": int(row["errors"]),
        # CPU spent by processes outside the bench, in percent of one core.
        "other": int(row.get("other_cpu_us", 0)) / int(row["duration_us"]) * 100
        if int(row["duration_us"]) else 0.0,
    }


def sort_key(key):
    workers, proxy, mode = key
    return (int(workers), ORDER.get(proxy, 9), MODE_ORDER.get(mode, 9))


def throughput_table(runs):
    by_key, by_round = {}, {}
    for row in runs:
        key = (row["workers"], row["proxy"], row["mode"])
        m = run_metrics(row)
        by_key.setdefault(key, []).append((row["round"], m))
        by_round[(row["workers"], row["round"], row["proxy"], row["mode"])] = m

    out = ["| proxy | mode | workers | req/s | p50 | p99 | CPU µs/req "
           "| req/s ÷ nginx | CPU ÷ nginx | p99 ÷ nginx |",
           "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for key in sorted(by_key, key=sort_key):
        workers, proxy, mode = key
        samples = by_key[key]
        med = {f: statistics.median(m[f] for _, m in samples) for f in ("rps", "p50", "p99", "cpu")}
        ratios = {}
        for field in ("rps", "cpu", "p99"):
            per_round = []
            for rnd, m in samples:
                ref = by_round.get((workers, rnd) + REFERENCE)
                if ref and ref[field]:
                    per_round.append(m[field] / ref[field])
            ratios[field] = statistics.median(per_round) if per_round else None
        errors = sum(m["errors"] for _, m in samples)
        note = f" ({errors} errors)" if errors else ""
        out.append(f"| {proxy}{note} | {mode} | {workers} | {med['rps']:,.0f} | "
                   f"{fmt_latency(med['p50'])} | {fmt_latency(med['p99'])} | "
                   f"{med['cpu']:.2f} | {fmt_ratio(ratios['rps'])} | "
                   f"{fmt_ratio(ratios['cpu'])} | {fmt_ratio(ratios['p99'])} |")
    return out


def raw_table(runs):
    out = ["| workers | round | proxy | mode | requests | req/s | p50 | p99 | CPU µs/req "
           "| errors | other load |",
           "|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for row in runs:
        m = run_metrics(row)
        out.append(f"| {row['workers']} | {row['round']} | {row['proxy']} | {row['mode']} | "
                   f"{int(row['requests']):,} | {m['rps']:,.0f} | {fmt_latency(m['p50'])} | "
                   f"{fmt_latency(m['p99'])} | {m['cpu']:.2f} | {m['errors']} | "
                   f"{max(m['other'], 0):.0f}% |")
    return out


def noise_note(runs):
    """A warning when processes outside the bench took CPU during some runs."""
    noisy = [r for r in runs if run_metrics(r)["other"] > NOISY_PERCENT]
    if not noisy:
        return []
    worst = max(run_metrics(r)["other"] for r in noisy)
    return ["", f"Note: in {len(noisy)} of {len(runs)} runs, processes outside the bench "
            f"used more than {NOISY_PERCENT}% of a core (at worst {worst:.0f}%); see "
            "\"other load\" below. Those figures are less trustworthy than the rest."]


def idle_table(idle):
    ref = {r["workers"]: float(r["bytes_per_conn"]) for r in idle
           if (r["proxy"], r["mode"]) == REFERENCE and int(r["ok"]) > 0}
    out = ["| proxy | mode | workers | idle conns held | RSS before | RSS after "
           "| bytes/conn | ÷ nginx |",
           "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in sorted(idle, key=lambda r: sort_key((r["workers"], r["proxy"], r["mode"]))):
        per = float(r["bytes_per_conn"])
        base = ref.get(r["workers"])
        ratio = fmt_ratio(per / base) if base else "—"
        out.append(f"| {r['proxy']} | {r['mode']} | {r['workers']} | "
                   f"{int(r['ok']):,} / {int(r['conns']):,} | "
                   f"{int(r['rss_before']) / 1048576:.1f} MiB | "
                   f"{int(r['rss_after']) / 1048576:.1f} MiB | {per:,.0f} | {ratio} |")
    return out


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    workdir = argv[1]
    meta = []
    if os.path.exists(os.path.join(workdir, "meta.txt")):
        with open(os.path.join(workdir, "meta.txt")) as f:
            meta = [line.rstrip("\n") for line in f if line.strip()]
    runs = read_tsv(os.path.join(workdir, "runs.tsv"))
    idle = read_tsv(os.path.join(workdir, "idle.tsv"))

    out = ["# Side-by-side benchmark", ""]
    out += [f"- {line}" for line in meta]
    if runs:
        out += ["", "## Throughput, latency and proxy CPU (median over rounds)", ""]
        out += throughput_table(runs)
        out += noise_note(runs)
    if idle:
        out += ["", "## Memory per idle keep-alive connection", ""]
        out += idle_table(idle)
    if runs:
        out += ["", "## Every run", ""]
        out += raw_table(runs)
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
