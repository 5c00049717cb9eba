"""Text tables of ``irperf fusion``, from the JSON-ready rows the fusion reports return."""

from __future__ import annotations

from typing import Any

from irperf.cli.common import fmt_int, fmt_ms, table

MAX_MEMBERS_SHOWN = 8


def summary_table(rows: list[dict[str, Any]]) -> str:
    """One line per strategy: FLOPs, DRAM bytes, intensity, both latencies, deltas vs none."""
    lines = []
    for r in rows:
        d, lat = r["delta_vs_none"], r["latency_ms"]
        lines.append(
            [
                r["strategy"],
                fmt_int(r["fused_groups"]),
                fmt_int(r["flops"]),
                fmt_int(r["dram_bytes"]),
                f"{r['arithmetic_intensity']:,.1f}",
                fmt_ms(lat["aggregate_roofline"]),
                fmt_ms(lat["per_op_roofline"]),
                f"{d['dram_bytes']:+,}",
                f"{d['per_op_roofline_ms']:+,.3f}",
            ]
        )
    headers = ["strategy", "groups", "FLOPs", "DRAM bytes", "FLOP/B", "aggr. ms", "per-op ms"]
    return table([*headers, "bytes vs none", "per-op ms vs none"], lines)


def layer_table(rows: list[dict[str, Any]]) -> str:
    """Bytes by kind per block kind: one layer's for repeated blocks, else the total."""
    lines = []
    for r in rows:
        for layer in r["layers"]:
            v = layer.get("per_layer", layer)
            lines.append(
                [
                    r["strategy"],
                    layer["group"],
                    fmt_int(layer["layers"]) if layer["layers"] else "",
                    fmt_int(v["weights_bytes"]),
                    fmt_int(v["activations_bytes"]),
                    fmt_int(v["scores_bytes"]),
                    fmt_int(v["dram_bytes"]),
                ]
            )
    headers = ["strategy", "group", "layers", "weights", "activations", "scores", "total"]
    return table(headers, lines, "ll")


def log_text(rows: list[dict[str, Any]]) -> str:
    """Greedy's steps, one line each, as XLA's fusion dump."""
    from passes.fusion_greedy import FusionStep

    out = []
    for r in rows:
        if "log" in r:
            out.append(f"\n{r['strategy']}: {len(r['log'])} fusion steps")
            out.extend(f"  {FusionStep(**step)}" for step in r["log"])
    return "\n".join(out)


def groups_table(patterns: list[dict[str, Any]]) -> str:
    lines = []
    for p in patterns:
        names = p["members"]
        if len(names) > MAX_MEMBERS_SHOWN:
            names = [*names[:3], f"... ({len(names)} ops) ...", names[-1]]
        lines.append(
            [
                p["block_kind"],
                fmt_int(p["count"]),
                " + ".join(names),
                ",".join(p["rules"]),
                fmt_int(p["dram_bytes"]),
            ]
        )
    return table(["group", "count", "members", "rules", "DRAM bytes"], lines, "lrll")


def opportunities_table(patterns: list[dict[str, Any]]) -> str:
    lines = [
        [
            p["block_kind"],
            p["kind"],
            p["producer"],
            ", ".join(p["consumers"]),
            p["rule"] or "-",
            fmt_int(p["count"]),
            fmt_int(p["saved_bytes_each"]),
            fmt_int(p["saved_bytes"]),
            fmt_ms(p["saved_ms"]),
            "yes" if p["fits"] else "no",
        ]
        for p in patterns
    ]
    headers = ["group", "kind", "producer", "consumers", "rule", "count"]
    headers += ["bytes saved each", "bytes saved", "ms saved", "fits"]
    return table(headers, lines, "lllll")
