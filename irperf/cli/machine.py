"""The machine flags shared by ``analyze`` and ``place``: tensor parallelism and precision.

``--tp N|off``: split the graph over N chips (default for a Tenstorrent target: every chip of
its mesh; otherwise off). ``--pattern``: how text layers are split (``fractured``, the default
on 1xN meshes, or ``all-reduce``). ``--precision P|FILE``: a precision policy (default for a
Tenstorrent target: ``tt-accuracy``; otherwise none). ``--weight-dtype`` is the older
shorthand: given without ``--precision`` it replaces the default policy (the lowering's weight
format for every matmul); given with one, the two contradict each other.
"""

from __future__ import annotations

import argparse
from typing import Any

from irperf.checks import show
from irperf.cli.common import UsageError
from irperf.layout import MAX_CHIPS

PATTERNS = ("fractured", "all-reduce")
DEFAULT_POLICY = "tt-accuracy"


def tp_value(text: str) -> int:
    """An argparse type for ``--tp``: a chip count from 1 (unsplit) up, or ``off`` (1)."""
    word = text.strip().lower()
    if word == "off":
        return 1
    if not (word.isascii() and word.isdigit() and 1 <= int(word) <= MAX_CHIPS):
        raise argparse.ArgumentTypeError(
            f"a chip count from 1 to {MAX_CHIPS:,} or off, got {show(text)}"
        )
    return int(word)


def add_machine_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--tp",
        type=tp_value,
        default=None,
        help="tensor-parallel chips, or off; default: every chip of a Tenstorrent target's mesh",
    )
    p.add_argument(
        "--pattern",
        type=str.lower,
        choices=PATTERNS,
        default=None,
        help="text layers under tensor parallelism: fractured (residual split; default) or "
        "all-reduce",
    )
    p.add_argument(
        "--precision",
        default=None,
        help="precision policy: tt-accuracy, tt-performance, bf16 or a .toml file; default for "
        f"a Tenstorrent target: {DEFAULT_POLICY} (unless --weight-dtype is given)",
    )


def is_tenstorrent(target: Any) -> bool:
    return bool(target.kind == "tenstorrent")


def machine_choice(args: argparse.Namespace, target: Any) -> tuple[int, str | None, str | None]:
    """The chips, pattern (None where no text layer is split) and policy (None: the lowering's
    formats) a run uses."""
    tt = is_tenstorrent(target)
    chips = args.tp if args.tp is not None else (target.mesh[0] * target.mesh[1] if tt else 1)
    if chips > target.chips:
        have = f"{target.chips} chip" + ("s" if target.chips > 1 else "")
        raise UsageError(f"--tp {chips}: {target.label} has {have}")
    if chips > 1 and target.link is None:
        raise UsageError(f"--tp {chips}: {target.label} has no link between chips")
    if args.pattern is not None and chips == 1:
        raise UsageError("--pattern means nothing without tensor parallelism (--tp 1 or off)")
    vision_only = getattr(args, "part", None) == "vision"  # --part is lower-cased as parsed
    if args.pattern is not None and vision_only:
        raise UsageError(
            "--pattern means nothing for --part vision: the vision encoder always all-reduces"
        )
    pattern = args.pattern or "fractured"
    given_weights = getattr(args, "weight_dtype", None) is not None
    if args.precision is not None and given_weights:
        raise UsageError(
            "--precision and --weight-dtype contradict each other: a policy sets the weight "
            "formats (--weight-dtype is the shorthand for a single one)"
        )
    policy = args.precision
    if policy is None and tt and not given_weights:
        policy = DEFAULT_POLICY
    text = chips > 1 and not vision_only
    return chips, (pattern if text else None), policy


def machine_passes(chips: int, pattern: str | None, policy: str | None) -> list[Any]:
    """The transforms that put the graph on the machine, for ``irperf.run``."""
    from irperf.api import _load_builtin_passes
    from irperf.pass_manager import build_pass, get_pass

    _load_builtin_passes()
    passes: list[Any] = []
    if chips > 1:
        options = {"chips": chips, "pattern": pattern or "fractured"}  # vision: no text split
        passes.append(build_pass(get_pass("tensor-parallel"), options))
    if policy is not None:
        from passes.precision import load_policy

        passes.append(build_pass(get_pass("precision"), {"policy": load_policy(policy)}))
    return passes
