"""``irperf models`` and ``irperf targets``: what can be lowered and where it can run."""

from __future__ import annotations

import argparse
from typing import Any

from irperf.cli.common import fmt_int, print_json, table


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("models", help="list the model presets")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=models)
    p = sub.add_parser("targets", help="list the hardware targets")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=targets)


def models(args: argparse.Namespace) -> int:
    from lowering.presets import PRESET_DESCRIPTIONS, PRESETS

    if args.json:
        print_json(
            [
                {
                    "name": name,
                    "description": PRESET_DESCRIPTIONS[name],
                    "image_size": cfg.vision.image_size,
                    "text_width": cfg.text.hidden_size,
                    "text_layers": cfg.text.num_hidden_layers,
                    "cross_attention_layers": list(cfg.text.cross_attention_layers),
                }
                for name, cfg in PRESETS.items()
            ]
        )
        return 0
    rows = [
        [
            name,
            str(cfg.vision.image_size),
            str(cfg.text.num_hidden_layers),
            PRESET_DESCRIPTIONS[name],
        ]
        for name, cfg in PRESETS.items()
    ]
    print(table(["model", "tile px", "text layers", "description"], rows, "lrrl"))
    return 0


def targets(args: argparse.Namespace) -> int:
    from targets import list_targets

    ts = list_targets()
    if args.json:
        print_json(
            [
                {
                    "name": t.name,
                    "kind": t.kind,
                    "description": t.description,
                    "chips": t.chips,
                    # Card totals (the keys irperf has always printed), then one chip's.
                    "cores": t.chips * t.cores,
                    "peak_flops_per_s": t.chips * t.peak_flops_per_s_per_chip(),
                    "dram_bandwidth_bytes_per_s": t.chips * t.dram_bandwidth_bytes_per_s_per_chip,
                    "dram_bytes": t.chips * t.dram_bytes_per_chip,
                    "cores_per_chip": t.cores,
                    "peak_flops_per_s_per_chip": t.peak_flops_per_s_per_chip(),
                    "dram_bandwidth_bytes_per_s_per_chip": t.dram_bandwidth_bytes_per_s_per_chip,
                    "dram_bytes_per_chip": t.dram_bytes_per_chip,
                }
                for t in ts
            ]
        )
        return 0
    rows = [
        [
            t.name,
            t.kind,
            str(t.chips),
            f"{t.chips * t.peak_flops_per_s_per_chip() / 1e12:,.1f}",
            f"{t.default_dtype}/{t.default_fidelity}",
            f"{t.chips * t.dram_bandwidth_bytes_per_s_per_chip / 1e9:,.0f}",
            fmt_int(t.chips * t.dram_bytes_per_chip // 10**9),
            t.description,
        ]
        for t in ts
    ]
    headers = ["target", "kind", "chips", "TFLOP/s", "format", "GB/s", "GB", "description"]
    print(table(headers, rows, "llrrlrrl"))
    return 0
