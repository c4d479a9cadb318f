#!/usr/bin/env python3
"""Plot the last load-suite run: rps and p99 per workload and configuration.

Reads perf/out/last.csv (written by perf/run.sh) and writes perf/results.png:

    pip install matplotlib      # once
    python3 perf/plot.py [CSV] [PNG]

The two ceilings are drawn as horizontal lines on the rps panel (A, the bare hyper server,
dashed; B, shardkv's connection layer with a fixed answer, dotted: their median runs), so each
bar reads as a fraction of what a bare server allows. When perf/out/memory.csv exists (written
by perf/memory.sh, which perf/run.sh runs), a third panel shows RSS bytes per key of both store
kinds and redis-server, with and without a TTL.
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
    ceilings = {r["config"]: r for r in rows if r["workload"] == "ceiling"}
    rows = [r for r in rows if r["workload"] != "ceiling"]
    memory_csv = src.parent / "memory.csv"
    memory = list(csv.DictReader(memory_csv.open())) if memory_csv.exists() else []

    workloads = list(OrderedDict.fromkeys(r["workload"] for r in rows))
    configs = list(OrderedDict.fromkeys(r["config"] for r in rows))
    by = {(r["workload"], r["config"]): r for r in rows}

    panels = 3 if memory else 2
    fig, axes = plt.subplots(panels, 1, figsize=(11, 4 * panels))
    ax_rps, ax_p99 = axes[0], axes[1]
    width = 0.8 / max(len(configs), 1)
    xs = range(len(workloads))
    for i, config in enumerate(configs):
        offs = [x - 0.4 + width * (i + 0.5) for x in xs]
        rps = [float(by[(w, config)]["rps"]) / 1000 if (w, config) in by else 0 for w in workloads]
        p99 = [float(by[(w, config)]["p99_us"]) / 1000 if (w, config) in by else 0 for w in workloads]
        ax_rps.bar(offs, rps, width, label=config)
        ax_p99.bar(offs, p99, width, label=config)
    for name, style in (("ceiling A", "--"), ("ceiling B", ":")):
        if name in ceilings:
            rps = float(ceilings[name]["rps"]) / 1000
            ax_rps.axhline(rps, color="black", linestyle=style, linewidth=1,
                           label=f"{name} {rps:.0f}k")
            p99 = float(ceilings[name]["p99_us"]) / 1000
            ax_p99.axhline(p99, color="black", linestyle=style, linewidth=1,
                           label=f"{name} p99 {p99:.1f} ms")
    for ax in (ax_rps, ax_p99):
        ax.set_xticks(list(xs))
        ax.set_xticklabels([LABELS.get(w, w) for w in workloads], fontsize=8)
    if memory:
        ax_mem = axes[2]
        servers = list(OrderedDict.fromkeys(r["server"] for r in memory))
        ttls = list(OrderedDict.fromkeys(r["ttl"] for r in memory))
        mw = 0.8 / max(len(servers), 1)
        for i, server in enumerate(servers):
            vals = [next((float(r["rss_bytes_per_key"]) for r in memory
                          if r["server"] == server and r["ttl"] == t), 0) for t in ttls]
            offs = [x - 0.4 + mw * (i + 0.5) for x in range(len(ttls))]
            bars = ax_mem.bar(offs, vals, mw, label=server)
            ax_mem.bar_label(bars, fmt="%.0f", fontsize=8)
        ax_mem.set_xticks(list(range(len(ttls))))
        ax_mem.set_xticklabels([f"TTL {t} s" if t != "none" else "no TTL" for t in ttls])
        ax_mem.set_ylabel("RSS bytes per key")
        keys = memory[0]["keys"]
        ax_mem.set_title(f"memory: {keys} keys, 100-byte values, same bytes into each server")
        ax_mem.legend(fontsize=8)
    ax_rps.set_ylabel("thousand requests / s")
    ax_rps.set_title("shardkv under wrk -t2 -c64 (saturation), same run as the ceilings")
    ax_rps.legend(fontsize=8, ncol=3)
    ax_p99.set_ylabel("p99 latency, ms")
    ax_p99.legend(fontsize=8, ncol=3)
    fig.tight_layout()
    fig.savefig(dst, dpi=110)
    print(f"wrote {dst}")


if __name__ == "__main__":
    main()
