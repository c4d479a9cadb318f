#!/usr/bin/env python3
"""Plot the last load-suite run: rps and p99 per workload and configuration.

Reads perf/out/last.csv (written by perf/run.sh) and writes perf/results.png:

    pip install matplotlib      # once
    python3 perf/plot.py [CSV] [PNG]

The ceiling is drawn as a horizontal line (the mean of its runs in the suite) on the rps panel,
so each bar reads as a fraction of what the HTTP layer alone allows.
"""

import csv
import sys
from collections import OrderedDict
from pathlib import Path

try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    sys.exit("perf/plot.py needs matplotlib: pip install matplotlib")

HERE = Path(__file__).resolve().parent
LABELS = {
    "get_hit": "GET hit",
    "get_miss": "GET miss",
    "set_url": "SET /set",
    "set_rest": "SET PUT",
    "mix": "90/10 mix",
    "mget": "mget x10",
    "mset": "mset x10",
    "set_ttl": "SET ttl",
}


def main() -> None:
    src = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "out" / "last.csv"
    dst = Path(sys.argv[2]) if len(sys.argv) > 2 else HERE / "results.png"
    rows = list(csv.DictReader(src.open()))
    ceiling = [r for r in rows if r["workload"] == "ceiling"]
    rows = [r for r in rows if r["workload"] != "ceiling"]
    ceiling_rps = sum(float(r["rps"]) for r in ceiling) / len(ceiling) if ceiling else None

    workloads = list(OrderedDict.fromkeys(r["workload"] for r in rows))
    configs = list(OrderedDict.fromkeys(r["config"] for r in rows))
    by = {(r["workload"], r["config"]): r for r in rows}

    fig, (ax_rps, ax_p99) = plt.subplots(2, 1, figsize=(11, 8), sharex=True)
    width = 0.8 / max(len(configs), 1)
    xs = range(len(workloads))
    for i, config in enumerate(configs):
        offs = [x - 0.4 + width * (i + 0.5) for x in xs]
        rps = [float(by[(w, config)]["rps"]) / 1000 if (w, config) in by else 0 for w in workloads]
        p99 = [float(by[(w, config)]["p99_us"]) / 1000 if (w, config) in by else 0 for w in workloads]
        ax_rps.bar(offs, rps, width, label=config)
        ax_p99.bar(offs, p99, width, label=config)
    if ceiling_rps:
        ax_rps.axhline(ceiling_rps / 1000, color="black", linestyle="--", linewidth=1,
                       label=f"ceiling {ceiling_rps / 1000:.0f}k")
        ceiling_p99 = max(float(r["p99_us"]) for r in ceiling) / 1000
        ax_p99.axhline(ceiling_p99, color="black", linestyle="--", linewidth=1,
                       label=f"ceiling p99 {ceiling_p99:.1f} ms")
    ax_rps.set_ylabel("thousand requests / s")
    ax_rps.set_title("shardkv under wrk -t2 -c64 (saturation), same run as the ceiling")
    ax_rps.legend(fontsize=8, ncol=3)
    ax_p99.set_ylabel("p99 latency, ms")
    ax_p99.legend(fontsize=8, ncol=3)
    ax_p99.set_xticks(list(xs))
    ax_p99.set_xticklabels([LABELS.get(w, w) for w in workloads])
    fig.tight_layout()
    fig.savefig(dst, dpi=110)
    print(f"wrote {dst}")


if __name__ == "__main__":
    main()
