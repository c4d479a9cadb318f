"""Plots a soak CSV (perf/soak.sh): RSS and rps over time, with the end of warm-up marked.

    python3 perf/soak_plot.py perf/out/soak-<date>.csv perf/out/soak-<date>.png [DURATION_S]

Needs matplotlib (soak.sh checks first and says "no plot: matplotlib missing" without it).
"""
import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    src, dst = sys.argv[1], sys.argv[2]
    with open(src) as f:
        rows = list(csv.DictReader(f))
    t = [float(r["elapsed_s"]) for r in rows]
    duration = float(sys.argv[3]) if len(sys.argv) > 3 else (t[-1] if t else 0)
    rss = [float(r["rss_mib"]) for r in rows]
    # The first sample is before any load: its rps is meaningless.
    rps = [float(r["rps"]) for r in rows[1:]]
    keys = [max(0, int(r["keys"])) for r in rows]
    errors = [int(r["errors"]) + int(r["wrong_reads"]) for r in rows]

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    top.plot(t, rss, marker="o", color="tab:red", label="server RSS (MiB)")
    top.set_ylabel("RSS (MiB)")
    top.set_ylim(bottom=0)
    keys_axis = top.twinx()
    keys_axis.plot(t, keys, color="tab:gray", linestyle=":", label="keys")
    keys_axis.set_ylabel("keys")
    keys_axis.set_ylim(bottom=0)
    bottom.plot(t[1:], rps, marker="o", color="tab:blue", label="rps (10 s intervals)")
    bottom.set_ylabel("requests / s")
    bottom.set_ylim(bottom=0)
    bottom.set_xlabel("seconds")
    err_axis = None
    if any(errors):
        err_axis = bottom.twinx()
        err_axis.plot(t, errors, color="black", label="errors + wrong reads")
        err_axis.set_ylabel("errors (cumulative)")
    for ax in (top, bottom):
        # soak.sh's warm-up: the first third of the run, at least 30 s.
        warmup = max(duration / 3, 30.0)
        ax.axvline(warmup, color="tab:green", linestyle="--", label="end of warm-up")
        ax.grid(alpha=0.3)
    for ax, twin in ((top, keys_axis), (bottom, err_axis)):
        lines, labels = ax.get_legend_handles_labels()
        if twin is not None:
            more_lines, more_labels = twin.get_legend_handles_labels()
            lines, labels = lines + more_lines, labels + more_labels
        ax.legend(lines, labels, loc="lower right")
    fig.suptitle(f"shardkv soak: {src.rsplit('/', 1)[-1]}")
    fig.tight_layout()
    fig.savefig(dst, dpi=100)


if __name__ == "__main__":
    main()
