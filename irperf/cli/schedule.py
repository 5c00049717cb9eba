"""``irperf schedule``: how long a request takes on the target, and where the time goes.

Prefill (the image, the projector, the cross-attention K/V and the prompt, up to the first
token's logits) gives the time to first token; one decode step at the context gives the time
per output token. Each graph is put on the machine (``--tp``, ``--precision``), placed
(``--strategy``, default ``tt-metal``), tiled, timed per op (``op-time``) and scheduled
(``schedule``). Three views side by side: the aggregate roofline (the seed's method, per chip),
the sum of per-op times, the schedule. ``--gen N``: a whole request, the TTFT plus N decode
steps whose context grows from the prompt's length, summed by Simpson's rule over the first,
middle and last step (the step time is close to affine in the context).

``--json`` is a public contract: ``model``, ``target``, ``tp``, ``precision``, ``strategy``,
``overlap``, ``async_ccl``, ``dispatch``, ``fusion``, ``batch``, ``ttft_ms``, ``tpot_ms``,
``tokens_per_s_per_user``, ``tokens_per_s``, ``request_ms`` (with ``--gen``; else null),
``fits`` (every phase's weights, KV cache and activations within one chip's DRAM, or the pooled
DRAM of an unsplit graph),
``gen``, and ``phases`` {``prefill``, ``decode``: ``latency_ms`` {``aggregate_roofline``,
``per_op``, ``scheduled``}, ``stages_ms`` (each stage's span in the schedule), ``roles_ms``
(busy time per role), ``utilisation`` (busy over makespan per resource), ``critical_path_ops``,
``memory_bytes``, ``dram_capacity_bytes``, ``fits``,
``ops`` (one per kernel: an op, or with ``--fusion`` a fused group of kind ``kernel``)
[{``name``, ``kind``, ``members``, ``role``, ``stage``, ``start_us``, ``end_us``, ``bound``,
``dispatch_start_us``, ``dispatch_us``, ``resources``, and ``flops``, ``dram_bytes``,
``noc_bytes``, ``link_bytes`` as the device runs the op: ``full`` convention, placed}]}.
``--trace-json F`` writes the schedule as a Chrome trace (``irperf/cli/trace.py``).
"""

from __future__ import annotations

import argparse
from typing import Any

from irperf.cli.common import (
    UsageError,
    add_model_args,
    device_rows,
    fmt_ms,
    lower_from_args,
    print_json,
    table,
)
from irperf.cli.machine import add_machine_args, is_tenstorrent, machine_choice, machine_passes
from irperf.cli.place import STRATEGIES
from irperf.units import MS_PER_S, US_PER_S

PHASES = ("both", "prefill", "decode")


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a number from 0 to 1, got {text!r:.40}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"a number from 0 to 1, got {text!r:.40}")
    return value


def _gen(text: str) -> int:
    if not (text.isascii() and text.isdigit() and 1 <= int(text) <= 1_000_000):
        raise argparse.ArgumentTypeError(f"a token count from 1 to 1,000,000, got {text!r:.40}")
    return int(text)


def add_request_args(p: argparse.ArgumentParser) -> None:
    """A request placed on a target: the model's flags, ``--target``, the machine's, and
    ``--strategy`` (``schedule`` and ``compare`` take the same)."""
    add_model_args(p)
    p.add_argument("--target", default="n300", help="target name or .toml file (default n300)")
    add_machine_args(p)
    p.add_argument(
        "--strategy",
        type=str.lower,
        choices=STRATEGIES,
        default=None,
        help="memory homes on a Tenstorrent target (as irperf place; default tt-metal)",
    )


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("schedule", help="TTFT and time per token on a target, scheduled")
    add_request_args(p)
    p.set_defaults(phase="both")
    p.add_argument(
        "--overlap",
        type=_fraction,
        default=1.0,
        help="within an op, how far compute and data movement overlap: 1 the larger of them "
        "(default), 0 their sum",
    )
    p.add_argument(
        "--async-ccl",
        type=str.lower,
        choices=["on", "off"],
        default="on",
        help="collectives beside independent compute (on, default) or holding every core (off)",
    )
    p.add_argument(
        "--dispatch",
        type=str.lower,
        choices=["auto", "trace", "eager", "off"],
        default="auto",
        help="per-op dispatch: auto (decode traced, vision and prefill eager; default), trace, "
        "eager or off",
    )
    p.add_argument(
        "--fusion",
        default=None,
        help="a fusion strategy (irperf fusion lists them): each fused group runs as one kernel, "
        "one dispatch, its intermediates on chip",
    )
    p.add_argument("--gen", type=_gen, default=None, help="output tokens of a whole request")
    p.add_argument(
        "--trace-json",
        metavar="FILE",
        default=None,
        help="write the schedule as Chrome-trace JSON (open it in Perfetto or chrome://tracing)",
    )
    p.add_argument(
        "--plot",
        metavar="FILE",
        default=None,
        help="a roofline chart of the ops, .png or .svg (needs the plot extra: matplotlib)",
    )
    p.add_argument(
        "--timeline",
        metavar="FILE",
        default=None,
        help="a Gantt chart of the schedule, .png or .svg (needs the plot extra: matplotlib)",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a target parameter for this run (dram_bandwidth_bytes_per_s_per_chip=576e9); "
        "repeatable",
    )
    p.add_argument("--top", type=int, default=8, help="ops listed per phase (default 8)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def parse_set(item: str, many: bool = False) -> tuple[str, list[str]]:
    """``KEY=VALUE`` (``many``: ``KEY=V1,V2``) into the key and its values."""
    key, sep, values = item.partition("=")
    parts = [v.strip() for v in values.split(",")] if many else [values.strip()]
    if not sep or not key.strip() or not all(parts):
        form = "KEY=V1,V2" if many else "KEY=VALUE"
        raise UsageError(f"--set {item!r:.60}: give {form}")
    return key.strip(), parts


def apply_sets(target: Any, items: list[str]) -> Any:
    """``target`` with each ``KEY=VALUE`` applied: a numeric field of the target file, checked
    by the target's own validators."""
    import attrs

    from irperf.errors import TargetError

    numeric = {
        f.name: f.type
        for f in attrs.fields(type(target))
        if f.type in ("int", "float", "float | None") and f.name != "origin"
    }
    changes: dict[str, Any] = {}
    for item in items:
        key, (text,) = parse_set(item)
        if key not in numeric:
            raise UsageError(
                f"--set {key!r:.40}: not a numeric target parameter; valid: {', '.join(numeric)}"
            )
        try:
            value = float(text)
        except ValueError:
            raise UsageError(f"--set {key}={text!r:.40}: not a number") from None
        if numeric[key] == "int":
            if not value.is_integer():
                raise UsageError(f"--set {key}={text!r:.40}: a whole number")
            changes[key] = int(value)
        else:
            changes[key] = value
    if not changes:
        return target
    try:
        return attrs.evolve(target, **changes)
    except TargetError as e:
        raise UsageError(f"--set: {e}") from None


def _phase_graph(args: argparse.Namespace, phase: str, context: int | None) -> Any:
    saved = (args.phase, args.context, args.seq_len)
    args.phase = phase
    if phase == "decode":
        args.seq_len = None  # a decode step has no prompt: its context stands for it
        if context is not None:
            args.context = context
    else:
        args.context = None
    try:
        strategy = args.strategy if args.tt_metal_rows else None
        return lower_from_args(args, **device_rows(args, strategy))
    finally:
        args.phase, args.context, args.seq_len = saved


def scheduled(args: argparse.Namespace, graph: Any, target: Any) -> tuple[Any, dict[str, Any]]:
    """Place, tile, time and schedule ``graph``; the graph and its report."""
    from irperf.api import run as run_passes
    from irperf.pass_manager import build_pass, get_pass
    from passes.bytes import FusedTraffic
    from passes.flops import count_flops
    from passes.kernels import kernel_graph
    from passes.op_time import traffic_of, with_bound
    from passes.roofline import RooflineTime, aggregate_roofline_s
    from passes.schedule import Schedule, Slot

    chips, pattern, policy = machine_choice(args, target)
    passes: list[Any] = [*machine_passes(chips, pattern, policy)]
    if args.fusion is not None:
        from passes.fusion_rules import get_strategy

        if get_strategy(args.fusion).decompose_attention:
            passes.append("decompose-attention")
    if is_tenstorrent(target):  # memory homes and tiles are a Tenstorrent chip's
        passes.append(build_pass(get_pass("place"), {"strategy": args.strategy, "target": target}))
        passes.append(build_pass(get_pass("tiles"), {"target": target}))
    if args.fusion is not None:
        full = {"convention": "full"}
        passes.append(build_pass(get_pass("flops"), full))
        from passes.fusion_rules import get_strategy

        fuse: dict[str, Any] = {"strategy": args.fusion}
        if get_strategy(args.fusion).greedy:  # greedy's cost model: this target, every op
            fuse |= {"target": target, "convention": "full"}
        passes.append(build_pass(get_pass("fuse"), fuse))
        passes.append(build_pass(get_pass("fused-bytes"), full))
    passes.append(build_pass(get_pass("op-time"), {"target": target, "dispatch": args.dispatch}))
    options = {"target": target, "overlap": args.overlap, "async_ccl": args.async_ccl == "on"}
    passes.append(build_pass(get_pass("schedule"), options))
    counted = "placed-bytes" if is_tenstorrent(target) else "bytes"
    passes += ["flops", counted, build_pass(get_pass("roofline"), {"target": target}), "memory"]
    g = run_passes(graph, passes)
    from passes.memory import MemoryFootprint

    footprint = g.graph_record(MemoryFootprint)
    split = chips > 1  # a split graph counts one chip's part: one chip's DRAM holds it
    capacity = target.dram_bytes_per_chip * (1 if split else target.chips)
    slots = g.records(Slot)
    flops, traffic = count_flops(g, "full"), traffic_of(g)  # as the device runs them
    whole = g.graph_record(Schedule)
    makespan = whole.makespan_s
    stages: dict[str, list[float]] = {}
    roles: dict[str, float] = {}
    ops = []
    kg = kernel_graph(g)
    fused = g.records(FusedTraffic) if g.has_records(FusedTraffic) else None
    for kernel in kg.kernels:
        s = slots[kernel.name]
        if s.end_s == s.start_s and not s.resources:
            continue  # views: nothing runs
        n = g.node(kernel.name)
        span = stages.setdefault(n.stage or "other", [s.start_s, s.end_s])
        span[0], span[1] = min(span[0], s.start_s), max(span[1], s.end_s)
        role = n.role.value if n.role is not None else "other"
        roles[role] = roles.get(role, 0.0) + s.end_s - s.start_s
        t = _time(s)
        moved = fused if fused is not None else traffic
        ops.append(
            {
                "name": kernel.name,
                "kind": n.op.kind if len(kernel.members) == 1 else "kernel",
                "members": len(kernel.members),
                "role": role,
                "stage": n.stage,
                "start_us": s.start_s * US_PER_S,
                "end_us": s.end_s * US_PER_S,
                "bound": with_bound(t).bound,
                "dispatch_start_us": s.dispatch_start_s * US_PER_S,
                "dispatch_us": t.dispatch_s * US_PER_S,
                "resources": list(s.resources),
                "flops": sum(flops[m].flops for m in kernel.members),
                "dram_bytes": sum(moved[m].bytes for m in kernel.members),
                "noc_bytes": sum(traffic[m].noc_bytes for m in kernel.members),
                "link_bytes": sum(traffic[m].link_bytes for m in kernel.members),
            }
        )
    report = {
        "latency_ms": {
            "aggregate_roofline": aggregate_roofline_s(g.records(RooflineTime).values()) * MS_PER_S,
            "per_op": sum(_time(slots[k.name]).latency_s(args.overlap) for k in kg.kernels)
            * MS_PER_S,
            "scheduled": makespan * MS_PER_S,
        },
        "stages_ms": {k: (b - a) * MS_PER_S for k, (a, b) in stages.items()},
        "roles_ms": {k: v * MS_PER_S for k, v in sorted(roles.items(), key=lambda kv: -kv[1])},
        "utilisation": {k: (v / makespan if makespan else 0.0) for k, v in whole.busy_s.items()},
        "critical_path_ops": len(whole.critical_path),
        "memory_bytes": footprint.total_bytes,
        "dram_capacity_bytes": capacity,
        "fits": footprint.total_bytes <= capacity,
        "ops": ops,
    }
    return g, report


def _time(slot: Any) -> Any:
    assert slot.time is not None  # a kernel's slot always carries its time
    return slot.time


def schedule_report(args: argparse.Namespace) -> dict[str, Any]:
    from targets import load_target

    if args.part != "full" and args.phase == "both":
        raise UsageError(
            f"--part {args.part}: a request's TTFT and TPOT need the full model; give --phase "
            f"prefill or decode for one part"
        )
    if args.phase not in PHASES:
        raise UsageError(f"--phase {args.phase!r:.40}: valid: {', '.join(PHASES)}")
    if args.gen is not None and args.phase != "both":
        raise UsageError("--gen needs both phases (leave --phase out)")
    if args.gen is not None and args.context is not None:
        raise UsageError("--gen sets each step's context from the prompt; leave --context out")
    if args.phase == "prefill" and args.context is not None:
        raise UsageError("--context means nothing with --phase prefill (it is a decode step's)")
    if args.phase == "decode" and args.seq_len is not None:
        raise UsageError("--seq-len means nothing with --phase decode (give --context)")
    if args.top < 0:
        raise UsageError(f"--top {args.top}: a count of ops from 0")
    target = apply_sets(load_target(args.target), args.set)
    chips, _, policy = machine_choice(args, target)
    if args.strategy is not None and not is_tenstorrent(target):
        raise UsageError(
            f"--strategy means nothing on {target.label}: memory homes are a Tenstorrent chip's"
        )
    if args.strategy is None:
        args.strategy = "tt-metal"
    args.tt_metal_rows = is_tenstorrent(target) and args.strategy == "tt-metal"
    phases: dict[str, Any] = {}
    if args.phase in ("both", "prefill"):
        phases["prefill"] = scheduled(args, _phase_graph(args, "prefill", None), target)[1]
    request = None
    if args.phase in ("both", "decode"):
        if args.gen is not None:
            prompt = args.seq_len if args.seq_len is not None else 128
            points = [prompt, prompt + (args.gen - 1) // 2, prompt + args.gen - 1]
            steps = [scheduled(args, _phase_graph(args, "decode", c), target)[1] for c in points]
            phases["decode"] = steps[0]
            ms = [s["latency_ms"]["scheduled"] for s in steps]
            decode_ms = args.gen * (ms[0] + 4 * ms[1] + ms[2]) / 6
            request = phases["prefill"]["latency_ms"]["scheduled"] + decode_ms
        else:
            phases["decode"] = scheduled(args, _phase_graph(args, "decode", None), target)[1]
    ttft = phases["prefill"]["latency_ms"]["scheduled"] if "prefill" in phases else None
    tpot = phases["decode"]["latency_ms"]["scheduled"] if "decode" in phases else None
    per_user = 1000.0 / tpot if tpot else None
    fits = all(rep["fits"] for rep in phases.values())
    return {
        "model": args.model,
        "target": target.name,
        "tp": chips,
        "precision": policy,
        "strategy": args.strategy if is_tenstorrent(target) else None,
        "overlap": args.overlap,
        "async_ccl": args.async_ccl == "on",
        "dispatch": args.dispatch,
        "fusion": args.fusion,
        "batch": args.batch,
        "ttft_ms": ttft,
        "tpot_ms": tpot,
        "tokens_per_s_per_user": per_user,
        "tokens_per_s": per_user * args.batch if per_user is not None else None,
        "gen": args.gen,
        "request_ms": request,
        "fits": fits,
        "phases": phases,
    }


def run(args: argparse.Namespace) -> int:
    from irperf.cli.common import check_outputs
    from irperf.cli.pictures import check_picture

    outputs = [p for p in (args.trace_json, args.plot, args.timeline) if p is not None]
    check_outputs(args, outputs, [args.model, args.target])
    for flag, path in (("--plot", args.plot), ("--timeline", args.timeline)):
        if path is not None:
            check_picture(flag, path)
    out = schedule_report(args)
    if args.plot is not None or args.timeline is not None:
        from irperf.cli.pictures import roofline_plot, timeline_plot
        from targets import load_target

        if args.plot is not None:
            roofline_plot(out, load_target(args.target), args.plot)
        if args.timeline is not None:
            timeline_plot(out, args.timeline)
        if not args.json:
            for path in (args.plot, args.timeline):
                if path is not None:
                    print(f"wrote {path}")
    if args.trace_json is not None:
        from irperf.cli.trace import trace_bytes
        from irperf.render import write_file

        write_file(args.trace_json, trace_bytes(out))
        if not args.json:
            print(f"wrote {args.trace_json} (Chrome trace: Perfetto, chrome://tracing)")
    if args.json:
        print_json(out)
        return 0
    words = [
        out["model"],
        f"target={out['target']}",
        f"tp={out['tp']}",
        f"precision={out['precision']}",
        f"strategy={out['strategy']}",
        f"batch={out['batch']}",
        f"overlap={out['overlap']}",
        f"async-ccl={'on' if out['async_ccl'] else 'off'}",
        f"dispatch={out['dispatch']}",
        f"fusion={out['fusion'] or 'off'}",
    ]
    print("  ".join(words))
    print()
    if not out["fits"]:
        worst = max(out["phases"].values(), key=lambda r: r["memory_bytes"])
        print(
            f"warning: the model does not fit: {worst['memory_bytes'] / 1e9:,.2f} GB of weights, "
            f"KV cache and activations against {worst['dram_capacity_bytes'] / 1e9:,.2f} GB of "
            f"DRAM per chip; the times below are what it would take"
        )
    if out["ttft_ms"] is not None:
        print(f"TTFT (prefill, scheduled): {fmt_ms(out['ttft_ms'])} ms")
    if out["tpot_ms"] is not None:
        print(
            f"TPOT (one decode step):    {fmt_ms(out['tpot_ms'])} ms = "
            f"{out['tokens_per_s_per_user']:,.1f} tokens/s per user, "
            f"{out['tokens_per_s']:,.1f} in total"
        )
    if out["request_ms"] is not None:
        print(f"whole request, {out['gen']} output tokens: {fmt_ms(out['request_ms'])} ms")
    for phase, rep in out["phases"].items():
        lat = rep["latency_ms"]
        print()
        print(
            f"{phase}: aggregate roofline {fmt_ms(lat['aggregate_roofline'])} ms, sum of "
            f"per-op times {fmt_ms(lat['per_op'])} ms, scheduled {fmt_ms(lat['scheduled'])} ms"
        )
        spans = ", ".join(f"{k} {fmt_ms(v)}" for k, v in rep["stages_ms"].items())
        print(f"  stage spans (ms): {spans}")
        busy = ", ".join(f"{k} {100 * v:.0f}%" for k, v in rep["utilisation"].items())
        print(f"  busy: {busy}")
        roles = list(rep["roles_ms"].items())[:6]
        print("  most time by role (ms): " + ", ".join(f"{k} {fmt_ms(v)}" for k, v in roles))
        top = sorted(rep["ops"], key=lambda o: o["start_us"] - o["end_us"])[: args.top]
        if top:
            rows = [
                [
                    o["name"],
                    o["kind"],
                    f"{o['start_us']:,.1f}",
                    f"{o['end_us'] - o['start_us']:,.1f}",
                    o["bound"],
                ]
                for o in top
            ]
            print(table(["op", "kind", "start us", "us", "bound"], rows, "llrrl"))
    return 0
