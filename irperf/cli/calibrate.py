"""``irperf calibrate`` and ``irperf compare``: a target fitted to a device profile, and a
model's predicted op times against a profile's measured ones (``docs/calibrate.md``).

``calibrate --profile F --target T -o OUT.toml`` reads tt-metal's ops_perf_results CSV, fits
the time model (``targets/profile_fit.py``) and writes a target file that loads as any other,
headed by comments saying what it was fitted from and the fit's error per op class.

``compare --profile F MODEL [request flags] --target T`` schedules the model as ``irperf
schedule`` does (one phase), matches the profile's rows to its ops (``passes/profile_compare.py``)
and prints predicted against measured per op and per op class, with the mean and geometric mean
absolute percent error, and the rows it could not match and why. ``--json`` (strict JSON):
``model``, ``target``, ``phase``, ``profile``, ``overall``, ``classes``, ``ops``, ``unmatched``.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from irperf.cli.common import UsageError, output_file, print_json, table
from irperf.cli.schedule import add_request_args

DISPATCH_MODES = ("auto", "trace", "eager")


def add_parsers(sub: Any) -> None:
    p = sub.add_parser(
        "calibrate",
        help="fit a target's time model to a tt-metal profile (ops_perf_results CSV)",
    )
    p.add_argument(
        "--profile", required=True, metavar="CSV", help="tt-metal's ops_perf_results CSV"
    )
    p.add_argument(
        "--target", default="n300", help="the target to fit: a name or .toml file (default n300)"
    )
    p.add_argument(
        "-o",
        "--output",
        required=True,
        type=output_file,
        metavar="FILE",
        help="the fitted target file to write (.toml)",
    )
    p.add_argument(
        "--name", default=None, help="the fitted target's name (default: the output file's stem)"
    )
    p.add_argument(
        "--dispatch",
        type=str.lower,
        choices=DISPATCH_MODES,
        default="auto",
        help="which gap the op-to-op latency fits: trace, eager, or auto (traced under 6.5 us; "
        "default)",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run_calibrate)

    p = sub.add_parser(
        "compare",
        help="a model's predicted op times against a tt-metal profile's, per op and op class",
    )
    p.add_argument(
        "--profile", required=True, metavar="CSV", help="tt-metal's ops_perf_results CSV"
    )
    add_request_args(p)
    p.add_argument(
        "--dispatch",
        type=str.lower,
        choices=["auto", "trace", "eager", "off"],
        default="auto",
        help="per-op dispatch, as irperf schedule (the compared times are the kernels')",
    )
    p.add_argument(
        "--top", type=int, default=20, help="ops listed, largest error first (default 20)"
    )
    p.add_argument("--json", action="store_true", help="machine-readable output (every op)")
    p.set_defaults(func=run_compare)


def _name(args: argparse.Namespace) -> str:
    name = (
        args.name if args.name is not None else os.path.splitext(os.path.basename(args.output))[0]
    )
    if not name.strip():
        raise UsageError("calibrate: --name must not be empty")
    return str(name)


def _rows(n: int) -> str:
    return f"{n:,} row" + ("" if n == 1 else "s")


def _check_destination(path: str) -> None:
    """The written file goes to a file of the user's: not stdout's ``-``, not a shipped target."""
    from pathlib import Path

    from irperf.cli.common import UsageError
    from targets.loader import _data_dir

    if path == "-":
        raise UsageError("calibrate: -o takes a file name (the target is a file to load later)")
    shipped = Path(str(_data_dir())).resolve()
    if Path(path).resolve().is_relative_to(shipped):
        raise UsageError(
            f"calibrate: -o {path}: inside irperf's own targets ({shipped}); write it elsewhere"
        )


def run_calibrate(args: argparse.Namespace) -> int:
    from irperf.cli.common import check_outputs
    from irperf.render import write_file
    from targets import load_target
    from targets.profile import read_profile
    from targets.profile_fit import class_errors, fit_profile, fitted_target
    from targets.writer import target_toml

    check_outputs(args, [args.output], [args.profile, args.target])
    _check_destination(args.output)
    base = load_target(args.target)
    profile = read_profile(args.profile)
    fit = fit_profile(profile, base, args.dispatch)
    target = fitted_target(base, fit, _name(args))
    fitted = target.fit  # as written: six significant digits
    assert fitted is not None
    per_class = class_errors(fit)
    comments = [
        f"irperf calibrate: {base.name} fitted to the profile {profile.source}",
        f"({len(profile.rows):,} device rows, {fit.fitted.rows_used:,} used; irperf calibrate "
        "lists the rest with why)",
        "the fit's mean absolute error on the rows it used, per op class:",
        *(f"  {cls}: {_rows(n)}, {err:.1f}%" for cls, (n, err) in per_class.items()),
    ]
    if fit.dispatch_mode is not None:
        gap = fitted.dispatch_traced_s or fitted.dispatch_eager_s or 0.0
        comments.append(
            f"dispatch: median op-to-op latency {gap * 1e6:.2f} us, the {fit.dispatch_mode} gap"
        )
    comments.append("what the profile did not measure stays the calibration's (docs/calibrate.md)")
    write_file(args.output, target_toml(target, comments).encode("utf-8"))
    out = {
        "profile": profile.source,
        "target": base.name,
        "output": args.output,
        "name": target.name,
        "device_rows": len(profile.rows),
        "rows_used": fit.fitted.rows_used,
        "mean_abs_error_pct": fit.mean_abs_error_pct(),
        "classes": {c: {"rows": n, "mean_abs_error_pct": e} for c, (n, e) in per_class.items()},
        "kernels": [
            {"dtype": k.dtype, "fidelity": k.fidelity, "e_max": k.e_max, "fixed_s": k.fixed_s}
            for k in fitted.kernels
        ],
        "dram": [
            {"op_class": d.op_class, "bytes_per_s": d.bytes_per_s, "fixed_s": d.fixed_s}
            for d in fitted.dram
        ],
        "collectives": [
            {"kind": c.kind, "latency_s": c.latency_s, "s_per_byte": c.s_per_byte}
            for c in fitted.collectives
        ],
        "dispatch": fit.dispatch_mode,
        "dispatch_s": fitted.dispatch_traced_s or fitted.dispatch_eager_s,
        "unused": [{"row": u.row, "op_code": u.op_code, "reason": u.reason} for u in fit.unused],
    }
    if args.json:
        print_json(out)
        return 0
    print(
        f"fitted {base.name} to {profile.source}: {len(profile.rows):,} device rows, "
        f"{fit.fitted.rows_used:,} used, mean absolute error {fit.mean_abs_error_pct():.1f}%"
    )
    print(f"wrote {args.output} (target {target.name!r}; --target {args.output} loads it)")
    errs: dict[str, list[float]] = {}
    for r in fit.used:
        errs.setdefault(r.what, []).append(abs(r.error_pct))

    def err(what: str) -> str:
        values = errs.get(what, [])
        return f"{sum(values) / len(values):.1f}" if values else "-"

    def count(what: str) -> str:
        return f"{len(errs.get(what, [])):,}"

    if fitted.kernels:
        print()
        print("GEMM kernel model (t = fixed_s + ideal / e_max), per format and fidelity:")
        rows = [
            [
                k.dtype,
                k.fidelity,
                count(f"{k.dtype} {k.fidelity}"),
                f"{k.e_max:.3f}",
                f"{k.fixed_s * 1e6:.2f}",
                err(f"{k.dtype} {k.fidelity}"),
            ]
            for k in fitted.kernels
        ]
        print(
            table(
                ["format", "fidelity", "rows", "e_max", "fixed us", "mean abs err %"],
                rows,
                "llrrrr",
            )
        )
    if fitted.dram:
        print()
        print("DRAM time per op class (t = fixed_s + bytes / rate):")
        rows = [
            [
                d.op_class,
                count(d.op_class),
                f"{d.bytes_per_s / 1e9:.1f}",
                f"{d.fixed_s * 1e6:.2f}",
                err(d.op_class),
            ]
            for d in fitted.dram
        ]
        print(table(["class", "rows", "GB/s", "fixed us", "mean abs err %"], rows, "lrrrr"))
    if fitted.collectives:
        print()
        print("collectives (t = latency + bytes sent x s_per_byte):")
        rows = [
            [
                c.kind,
                count(c.kind),
                f"{c.latency_s * 1e6:.2f}",
                f"{1 / c.s_per_byte / 1e9:.2f}" if c.s_per_byte else "-",
                err(c.kind),
            ]
            for c in fitted.collectives
        ]
        print(table(["kind", "rows", "latency us", "GB/s", "mean abs err %"], rows, "lrrrr"))
    if fit.dispatch_mode is not None:
        print()
        print(
            f"dispatch: {out['dispatch_s'] * 1e6:.2f} us per op, the {fit.dispatch_mode} gap "
            "(median op-to-op latency)"
        )
    if fit.unused:
        reasons: dict[str, int] = {}
        for u in fit.unused:
            reasons[u.reason] = reasons.get(u.reason, 0) + 1
        print()
        print(f"rows not used ({len(fit.unused):,}):")
        print(table(["rows", "why"], [[f"{n:,}", r] for r, n in reasons.items()], "rl"))
    return 0


def _check_request(args: argparse.Namespace) -> None:
    if args.phase not in ("prefill", "decode"):
        raise UsageError(
            f"compare: --phase {args.phase!r:.40}: valid: prefill, decode (a profile is of one)"
        )
    if args.phase == "prefill" and args.context is not None:
        raise UsageError(
            "compare: --context means nothing with --phase prefill (it is a decode step's)"
        )
    if args.phase == "decode" and args.seq_len is not None:
        raise UsageError("compare: --seq-len means nothing with --phase decode (give --context)")
    if args.top < 1:
        raise UsageError(f"compare: --top {args.top}: a count of ops from 1")


def compare_report(args: argparse.Namespace) -> dict[str, Any]:
    from irperf.cli.machine import is_tenstorrent
    from irperf.cli.schedule import _phase_graph, scheduled
    from passes.profile_compare import GraphOp, errors, match, node_key
    from targets import load_target
    from targets.profile import read_profile

    _check_request(args)
    target = load_target(args.target)
    profile = read_profile(args.profile)
    if args.strategy is not None and not is_tenstorrent(target):
        raise UsageError(
            f"compare: --strategy means nothing on {target.label}: memory homes are a "
            "Tenstorrent chip's"
        )
    args.strategy = args.strategy or "tt-metal"
    args.tt_metal_rows = is_tenstorrent(target) and args.strategy == "tt-metal"
    args.fusion, args.overlap, args.async_ccl = None, 1.0, "on"  # a profile's ops are unfused
    if not is_tenstorrent(target):
        args.strategy = None
    g, rep = scheduled(args, _phase_graph(args, args.phase, None), target)
    ops = []
    for o in rep["ops"]:
        key = node_key(g, g.node(o["name"]))
        if key is not None:
            ops.append(GraphOp(name=o["name"], key=key, predicted_us=o["end_us"] - o["start_us"]))
    matched, unmatched = match(ops, profile)

    def stats(group: list[Any]) -> dict[str, Any]:
        e = errors(group)
        return {
            "ops": e.ops,
            "predicted_us": e.predicted_us,
            "measured_us": e.measured_us,
            "mean_abs_error_pct": e.mean_abs_error_pct,
            "geomean_abs_error_pct": e.geomean_abs_error_pct,
            "geomean_ops": e.geomean_ops,
        }

    classes = {
        c: stats([m for m in matched if m.op_class == c])
        for c in dict.fromkeys(m.op_class for m in matched)
    }
    return {
        "model": args.model,
        "target": target.name,
        "phase": args.phase,
        "profile": profile.source,
        "device_rows": len(profile.rows),
        "matched_rows": sum(len(m.rows) for m in matched),
        "overall": stats(matched),
        "classes": classes,
        "ops": [
            {
                "name": m.name,
                "class": m.op_class,
                "predicted_us": m.predicted_us,
                "measured_us": m.measured_us,
                "error_pct": m.error_pct,
                "rows": list(m.rows),
            }
            for m in matched
        ],
        "unmatched": [{"row": u.row, "op_code": u.op_code, "reason": u.reason} for u in unmatched],
    }


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f}"


def run_compare(args: argparse.Namespace) -> int:
    out = compare_report(args)
    if args.json:
        print_json(out)
        return 0
    o = out["overall"]
    print(
        f"{out['model']}  phase={out['phase']}  target={out['target']}  profile={out['profile']}: "
        f"{out['matched_rows']:,} of {out['device_rows']:,} device rows matched to "
        f"{o['ops']:,} ops"
    )
    print(
        f"overall: predicted {o['predicted_us']:,.1f} us, measured {o['measured_us']:,.1f} us, "
        f"mean abs error {_pct(o['mean_abs_error_pct'])}%, geomean abs error "
        f"{_pct(o['geomean_abs_error_pct'])}%"
    )
    if out["classes"]:
        print()
        rows = [
            [
                c,
                f"{s['ops']:,}",
                f"{s['predicted_us']:,.1f}",
                f"{s['measured_us']:,.1f}",
                _pct(s["mean_abs_error_pct"]),
                _pct(s["geomean_abs_error_pct"]),
            ]
            for c, s in out["classes"].items()
        ]
        print(
            table(
                [
                    "class",
                    "ops",
                    "predicted us",
                    "measured us",
                    "mean abs err %",
                    "geomean abs err %",
                ],
                rows,
                "lrrrrr",
            )
        )
    if out["ops"]:
        top = sorted(out["ops"], key=lambda m: -abs(m["error_pct"]))[: args.top]
        print()
        print(f"ops, largest error first ({len(top):,} of {len(out['ops']):,}; --top N):")
        rows = [
            [
                m["name"],
                m["class"],
                f"{m['predicted_us']:,.2f}",
                f"{m['measured_us']:,.2f}",
                f"{m['error_pct']:+.1f}",
            ]
            for m in top
        ]
        print(table(["op", "class", "predicted us", "measured us", "error %"], rows, "llrrr"))
    if out["unmatched"]:
        print()
        print(f"rows not matched ({len(out['unmatched']):,}):")
        rows = [[str(u["row"]), u["op_code"], u["reason"]] for u in out["unmatched"]]
        print(table(["row", "op code", "why"], rows, "rll"))
    return 0
