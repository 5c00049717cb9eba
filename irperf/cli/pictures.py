"""Pictures of a schedule (``irperf schedule --plot F``, ``--timeline F``), with matplotlib, an
optional extra (``pip install 'irperf[plot]'``): a clear one-line error when it is missing.

- ``--plot``: a roofline chart per phase. Each op is a point at its arithmetic intensity (FLOPs
  per DRAM byte, as the device runs it) and its achieved FLOP/s (FLOPs over its scheduled
  time), sized by its time and coloured by what bounds it; the roofs are one chip's DRAM
  bandwidth and its matrix peak for each format the target lists, at that format's usual
  fidelity. Ops without FLOPs or DRAM bytes have no place on a roofline and are left out (the
  legend says how many).
- ``--timeline``: a Gantt chart per phase, one row per resource of chip 0 (every chip runs the
  same program), each op a bar from its start to its end, coloured by its bound.
"""

from __future__ import annotations

import os
from typing import Any

from irperf.cli.common import UsageError

COLOURS = {
    "compute": "#d62728",
    "dram": "#1f77b4",
    "noc": "#9467bd",
    "link": "#2ca02c",
    "dispatch": "#7f7f7f",
}
FORMATS = (".png", ".svg")
ROWS = ("host", "grid", "dram", "link")


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UsageError(
            "pictures need matplotlib, an optional extra: pip install 'irperf[plot]'"
        ) from None
    return plt


def check_picture(flag: str, path: str) -> None:
    if os.path.splitext(path)[1].lower() not in FORMATS:
        raise UsageError(f"{flag} {path!r:.60}: a .png or .svg file")


def _save(plt: Any, fig: Any, path: str) -> None:
    from irperf.errors import OutputError

    try:
        fig.savefig(path, dpi=150, bbox_inches="tight")
    except OSError as e:
        raise OutputError(f"cannot write {path!r:.60}: {e.strerror or e}") from None
    finally:
        plt.close(fig)


def roofline_plot(report: dict[str, Any], target: Any, path: str) -> None:
    plt = _pyplot()
    phases = list(report["phases"].items())
    fig, axes = plt.subplots(1, len(phases), figsize=(7.5 * len(phases), 6), squeeze=False)
    bandwidth = target.dram_bandwidth_bytes_per_s_per_chip
    roofs: dict[float, list[str]] = {}  # peak -> the formats that reach it (one label each)
    for rate in target.compute:
        fidelity = target.fidelity_for(rate.dtype) if rate.fidelity != "none" else "none"
        if rate.fidelity == fidelity:
            label = rate.dtype if fidelity == "none" else f"{rate.dtype} {fidelity}"
            roofs.setdefault(rate.flops_per_s_per_core * target.cores, []).append(label)
    for ax, (phase, rep) in zip(axes[0], phases, strict=True):
        points = [
            op
            for op in rep["ops"]
            if op["flops"] and op["dram_bytes"] and op["end_us"] > op["start_us"]
        ]
        left_out = len(rep["ops"]) - len(points)
        longest = max((op["end_us"] - op["start_us"] for op in points), default=1.0)
        for bound, colour in COLOURS.items():
            mine = [op for op in points if op["bound"] == bound]
            if not mine:
                continue
            x = [op["flops"] / op["dram_bytes"] for op in mine]
            y = [op["flops"] / ((op["end_us"] - op["start_us"]) * 1e-6) for op in mine]
            size = [4 + 200 * (op["end_us"] - op["start_us"]) / longest for op in mine]
            ax.scatter(
                x, y, s=size, c=colour, alpha=0.5, edgecolors="none", label=f"{bound} ({len(mine)})"
            )
        lo, hi = 1e-2, 1e5
        for peak, names in sorted(roofs.items()):
            knee = peak / bandwidth
            ax.plot([lo, knee, hi], [lo * bandwidth, peak, peak], lw=1, color="black", alpha=0.6)
            ax.annotate(
                f"{', '.join(names)}: {peak / 1e12:,.0f} TFLOP/s",
                (hi, peak),
                fontsize=8,
                ha="right",
                va="bottom",
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(lo, hi)
        ax.set_xlabel("arithmetic intensity (FLOPs per DRAM byte)")
        ax.set_ylabel("achieved FLOP/s (per chip)")
        ax.set_title(
            f"{report['model']} {phase} on {report['target']}: "
            f"{rep['latency_ms']['scheduled']:,.1f} ms scheduled"
        )
        ax.grid(True, which="both", alpha=0.2)
        ax.legend(title=f"bound ({left_out} ops without FLOPs or bytes left out)", fontsize=8)
    _save(plt, fig, path)


def timeline_plot(report: dict[str, Any], path: str) -> None:
    plt = _pyplot()
    phases = list(report["phases"].items())
    fig, axes = plt.subplots(len(phases), 1, figsize=(16, 2.6 * len(phases)), squeeze=False)
    for ax, (phase, rep) in zip(axes[:, 0], phases, strict=True):
        for row, resource in enumerate(ROWS):
            for bound, colour in COLOURS.items():
                bars = []
                for op in rep["ops"]:
                    if resource not in op["resources"] or op["bound"] != bound:
                        continue
                    if resource == "host":
                        bars.append((op["dispatch_start_us"] / 1e3, op["dispatch_us"] / 1e3))
                    else:
                        bars.append((op["start_us"] / 1e3, (op["end_us"] - op["start_us"]) / 1e3))
                if bars:
                    ax.broken_barh(bars, (row - 0.4, 0.8), facecolors=colour, linewidth=0)
        ax.set_yticks(range(len(ROWS)), ROWS)
        ax.invert_yaxis()
        ax.set_xlabel("ms")
        ax.set_xlim(0, rep["latency_ms"]["scheduled"])
        ax.set_title(
            f"{report['model']} {phase} on {report['target']} (chip 0 of {report['tp']}): "
            f"{rep['latency_ms']['scheduled']:,.1f} ms"
        )
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in COLOURS.values()]
    fig.tight_layout()
    fig.legend(handles, list(COLOURS), title="bound", loc="center left", bbox_to_anchor=(1.0, 0.5))
    _save(plt, fig, path)
