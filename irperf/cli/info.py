"""``irperf models`` and ``irperf targets``: what can be lowered and where it can run."""

from __future__ import annotations

import argparse
from typing import Any

from irperf.cli.common import fmt_int, print_json, table
from irperf.units import US_PER_S


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("models", help="list the model presets")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=models)
    p = sub.add_parser(
        "targets",
        help="list the hardware targets, or show one (targets show NAME [--fit])",
    )
    p.add_argument("action", nargs="?", choices=["show"], help="show one target")
    p.add_argument("name", nargs="?", help="with show: a target name or .toml file")
    p.add_argument(
        "--fit",
        action="store_true",
        help="with show: the time model's fits to the target's measured microbenchmarks, "
        "with the error on every row",
    )
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
                    "image_size": cfg.vision.image_size if cfg.vision is not None else None,
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
            str(cfg.vision.image_size) if cfg.vision is not None else "-",
            str(cfg.text.num_hidden_layers),
            PRESET_DESCRIPTIONS[name],
        ]
        for name, cfg in PRESETS.items()
    ]
    print(table(["model", "tile px", "text layers", "description"], rows, "lrrl"))
    return 0


def targets(args: argparse.Namespace) -> int:
    from irperf.cli.common import UsageError

    if args.action == "show":
        if args.name is None:
            raise UsageError("targets show: name a target (irperf targets lists them)")
        return show_target(args)
    if args.name is not None or args.fit:
        raise UsageError("targets: a name and --fit go with show (irperf targets show NAME --fit)")
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


def show_target(args: argparse.Namespace) -> int:
    """One target's facts and sources; with ``--fit``, its calibration's fits row by row."""
    import attrs

    from irperf.cli.common import UsageError
    from targets import load_target

    t = load_target(args.name)
    facts = {
        f.name: getattr(t, f.name)
        for f in attrs.fields(type(t))
        if f.name not in ("sources", "origin", "compute", "link", "fidelity_by_dtype", "fit")
    }
    if t.fit is not None:  # what a profile fitted, in the units the file gives
        facts["fit"] = f"from {t.fit.profile} ({t.fit.rows_used:,} rows used)"
    out: dict[str, Any] = {"target": facts, "sources": list(t.sources)}
    if args.fit:
        if t.calibration is None:
            raise UsageError(
                f"targets show: {t.label} names no calibration; its time model uses simple "
                f"rules (docs/time.md), so there is no fit to show"
            )
        from targets.calibration import collective_fit_rows, gemm_fit_rows, gemm_models

        models = gemm_models(t)
        out["gemm_models"] = [
            {"dtype": d, "fidelity": f, "e_max": m.e_max, "fixed_s": m.fixed_s}
            for (d, f), m in models.items()
        ]
        out["gemm"] = [_row(r, "tflops") for r in gemm_fit_rows(t)]
        out["collectives"] = [_row(r, "us") for r in collective_fit_rows(t.calibration)]
        if t.fit is not None:
            out["profile_fit"] = attrs.asdict(t.fit)
    if args.json:
        print_json(out)
        return 0
    rows = [[k, _fmt(v)] for k, v in facts.items()]
    print(table(["field", "value"], rows, "ll"))
    if not args.fit:
        return 0
    print()
    print("GEMM kernel model (t = fixed_s + ideal / e_max), fitted per format and fidelity:")
    print(
        table(
            ["format", "fidelity", "e_max", "fixed us"],
            [
                [m["dtype"], m["fidelity"], f"{m['e_max']:.3f}", f"{m['fixed_s'] * US_PER_S:.2f}"]
                for m in out["gemm_models"]
            ],
            "llrr",
        )
    )
    if t.fit is not None and (t.fit.dram or t.fit.collectives):
        print()
        print(f"fitted to {t.fit.profile} (irperf calibrate), over the calibration:")
        rows = [
            [d.op_class, "dram", f"{d.bytes_per_s / 1e9:,.1f} GB/s + {d.fixed_s * US_PER_S:.2f} us"]
            for d in t.fit.dram
        ]
        rows += [
            [c.kind, "link", f"{c.latency_s * US_PER_S:.2f} us + {c.s_per_byte * 1e9:.4f} ns/B"]
            for c in t.fit.collectives
        ]
        print(table(["class", "resource", "time"], rows, "lll"))
    for title, key, unit in (
        ("GEMM table (M = K = N) against the fit", "gemm", "TFLOP/s"),
        ("collective table against the fit", "collectives", "us"),
    ):
        print()
        print(f"{title}:")
        print(
            table(
                ["what", "size", f"measured {unit}", f"fitted {unit}", "error %"],
                [
                    [
                        r["what"],
                        fmt_int(r["size"]),
                        f"{r['measured']:,.2f}",
                        f"{r['predicted']:,.2f}",
                        f"{r['error_pct']:+.1f}",
                    ]
                    for r in out[key]
                ],
                "lrrrr",
            )
        )
    return 0


def _row(r: Any, unit: str) -> dict[str, Any]:
    return {
        "what": r.what,
        "size": r.size,
        "unit": unit,
        "measured": r.measured,
        "predicted": r.predicted,
        "error_pct": r.error_pct,
    }


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:,.6g}"
    if isinstance(v, int) and not isinstance(v, bool):
        return fmt_int(v)
    return str(v)
