"""Shared CLI pieces: the one-line-error parser, model arguments, number and table formatting."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from irperf.checks import ECHO_CHARS, message_of, show
from irperf.errors import IrperfError, OutputError


class UsageError(IrperfError):
    """Bad command-line usage."""


_QUOTED = re.compile(rf"'([^']{{{ECHO_CHARS - 1},}})'")
"""A quoted stretch of an argparse message long enough to need cutting."""
_LONG_WORD = re.compile(rf"[^\s']{{{ECHO_CHARS + 1},}}")
"""An unquoted one (``unrecognized arguments: --xxxx...``)."""

_SURROGATE_PAIR = re.compile(r"\\ud[89ab][0-9a-f]{2}\\ud[c-f][0-9a-f]{2}")
_LONE_SURROGATE = re.compile(r"\\ud[89a-f][0-9a-f]{2}")
"""JSON escapes of UTF-16 halves: a pair is one character, a lone one is not text."""

_GIVEN = "_given_options"
"""Namespace attribute: the value each option was given, to catch one given twice."""


def _given_once(
    parser: argparse.ArgumentParser,
    namespace: argparse.Namespace,
    dest: str,
    value: Any,
    option: str | None,
) -> None:
    """A flag given twice with two values contradicts itself (argparse would keep the last)."""
    given: dict[str, tuple[Any, str]] = namespace.__dict__.setdefault(_GIVEN, {})
    said = option or dest
    if not isinstance(value, bool):
        said += f" {show(value)}"
    if dest in given and given[dest][0] != value:
        parser.error(f"{given[dest][1]} contradicts {said}")
    given[dest] = (value, said)


class _Once(argparse.Action):
    """An action that refuses its option given a second, different value."""

    def given(self, values: Any, option_string: str | None) -> Any:
        return values

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        _given_once(parser, namespace, self.dest, self.given(values, option_string), option_string)
        super().__call__(parser, namespace, values, option_string)


class StoreOnce(_Once, argparse._StoreAction):
    pass


class BooleanOnce(_Once, argparse.BooleanOptionalAction):
    """``--image`` / ``--no-image``, refusing both at once."""

    def given(self, values: Any, option_string: str | None) -> Any:
        return option_string is not None and not option_string.startswith("--no-")


class Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line (exit code 2) instead of usage + error,
    and refuses an option given twice with different values."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.register("action", None, StoreOnce)
        self.register("action", "store", StoreOnce)

    def error(self, message: str) -> NoReturn:
        # argparse quotes what it was given ("invalid int value: '999...'"): cut it to an echo
        message = _QUOTED.sub(lambda m: show(m.group(1)), message)
        message = _LONG_WORD.sub(lambda m: m.group(0)[: ECHO_CHARS - 3] + "...", message)
        command = self.prog.removeprefix("irperf").strip()  # main prints "irperf: error:"
        raise UsageError(f"{command}: {message}" if command else message)


def output_file(text: str) -> str:
    """An argparse type: a path to write, never empty (an empty one would read as not given)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an output file path must not be empty")
    return text


def add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="preset name (see 'irperf models') or a config.json/params.json")
    p.add_argument(
        "--part",
        default="full",
        type=str.lower,
        help="full (vision encoder, projector and text decoder; default), text (the decoder "
        "alone; the projected vision tokens are an input) or vision (encoder and projector)",
    )
    p.add_argument(
        "--phase",
        default="prefill",
        help="prefill (the prompt, and the image if any; default) or decode (one new token per "
        "sequence against the KV caches)",
    )
    p.add_argument("--batch", type=int, default=1, help="sequences in the batch (default 1)")
    p.add_argument(
        "--seq-len",
        type=int,
        default=None,
        help="prompt tokens per sequence in prefill (default 128)",
    )
    p.add_argument(
        "--context",
        type=int,
        default=None,
        help="positions already cached per sequence in decode (default 1024)",
    )
    p.add_argument(
        "--image",
        action=BooleanOnce,
        default=None,
        help="each sequence holds an image (default for a Vision model); --no-image: a text-only "
        "prompt, every "
        "cross-attention layer skipped",
    )
    p.add_argument("--images", type=int, default=None, help="images per sequence (default 1)")
    p.add_argument(
        "--tiles",
        type=int,
        default=None,
        help="tiles of each image that hold picture, 1..max_num_tiles (default all). The encoder "
        "always runs all max_num_tiles tiles (HF and Meta pad every image to them), so this "
        "changes no cost, only the run description",
    )
    p.add_argument(
        "--logits",
        default=None,
        help="prefill logits for the last position (HF generate; default) or all positions",
    )
    p.add_argument(
        "--dtype",
        default="bf16",
        help="activation format, a scalar float: bf16 (default), fp16, fp32 or fp8; every tensor "
        "but the linear weights (activations, KV caches, embedding tables, norms, biases)",
    )
    p.add_argument(
        "--weight-dtype",
        default=None,
        help="format of the linear (matmul) weights, lm_head and projector included: a --dtype "
        "format or a block format (bfp8_b, bfp4_b, bfp2_b); default: --dtype",
    )
    p.add_argument(
        "--layout",
        default=None,
        help="vision parameter layout: hf (default; what config.json users get) or meta (Meta's "
        "llama-models checkpoints: smaller tile-embedding tables, same FLOPs); not with "
        "--part text",
    )


def add_convention_arg(p: argparse.ArgumentParser, default: str | None, shown: str = "") -> None:
    """``--convention``; ``default`` None lets a command tell whether it was given."""
    p.add_argument(
        "--convention",
        default=default,
        type=str.lower,
        choices=["matmul-only", "full"],
        help=f"matmul-only: only matmul/conv/attention cost (the seed's); full: every op "
        f"(default {shown or default})",
    )


def device_rows(args: argparse.Namespace, strategy: str | None) -> dict[str, str]:
    """The lowering option a ``tt-metal`` placement asks for: vision tiles padded to whole
    32-row device tiles (1601 -> 1632), where the request runs a vision encoder at all."""
    from lowering import load_model_config

    if strategy != "tt-metal" or args.part == "text":
        return {}
    if load_model_config(args.model).vision is None:
        return {}  # a text-only Llama: no encoder, no rows to pad
    return {"vision_rows": "tile"}


def lower_from_args(args: argparse.Namespace, **extra: Any) -> Any:
    """Lower the request the flags describe; ``extra``: lowering options a command chooses
    itself (``place`` pads vision tiles as its strategy's device does)."""
    from irperf.api import lower

    return lower(args.model, args.part, **lowering_options(args, **extra))


def lowering_options(args: argparse.Namespace, **extra: Any) -> dict[str, Any]:
    """The lowering's keyword options the flags give (``lower_from_args``)."""
    return dict(
        batch=args.batch,
        images=args.images,
        tiles=args.tiles,
        dtype=args.dtype,
        weight_dtype=args.weight_dtype,
        phase=args.phase,
        seq_len=args.seq_len,
        context=args.context,
        image=args.image,
        logits=args.logits,
        layout=args.layout,
        **extra,
    )


def fmt_int(n: int) -> str:
    return f"{n:,}"


def fmt_ms(x: float) -> str:
    return f"{x:,.3f}"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], align: str = "") -> str:
    """Columns padded to width. ``align`` has one letter per column, ``l`` or ``r``; columns it
    does not cover are right-aligned, except the first, which is left-aligned."""
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows, strict=True)]
    align = align or "l"

    def line(cells: Sequence[str]) -> str:
        out = []
        for i, (c, w) in enumerate(zip(cells, widths, strict=True)):
            left = align[i] == "l" if i < len(align) else False
            out.append(str(c).ljust(w) if left else str(c).rjust(w))
        return "  ".join(out).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def print_json(obj: Any) -> None:
    """Strict JSON on stdout: a NaN or an infinity is an error, never ``NaN`` in the output;
    indented on a terminal, one line when piped (the same values)."""
    try:  # indented for a person; compact (the C encoder, ten times faster) for a program
        indent = 2 if sys.stdout.isatty() else None
        text = json.dumps(obj, indent=indent, allow_nan=False)
    except (ValueError, TypeError, RecursionError) as e:  # NaN, a cycle, a plugin's object
        raise OutputError(f"the result cannot be written as strict JSON: {message_of(e)}") from None
    if _LONE_SURROGATE.search(_SURROGATE_PAIR.sub("", text)):
        raise OutputError("the result holds a string that is not Unicode text (a lone surrogate)")
    sys.stdout.write(text + "\n")


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return os.path.realpath(a) == os.path.realpath(b)


def check_outputs(args: argparse.Namespace, outputs: Sequence[str], inputs: Sequence[str]) -> None:
    """Refuse output files that are one another, one of the inputs, or (with ``--json``)
    stdout itself: each would silently destroy what it aliases."""
    command = args.command
    for i, path in enumerate(outputs):
        for other in outputs[i + 1 :]:
            if _same_file(path, other):
                raise UsageError(f"{command}: two outputs name one file, {show(path)}")
        for source in inputs:
            if os.path.exists(source) and _same_file(path, source):
                raise UsageError(f"{command}: output {show(path)} would overwrite an input")
        if getattr(args, "json", False):
            with contextlib.suppress(OSError, ValueError, AttributeError):
                if os.path.samestat(os.stat(path), os.fstat(sys.stdout.fileno())):
                    raise UsageError(f"{command}: output {show(path)} is stdout, where --json goes")


def load_plugins(specs: Sequence[str]) -> None:
    """``--load`` each plugin; one that defines no registered pass and no fusion strategy is an
    error (``--load os`` would otherwise do nothing, silently)."""
    from irperf.api import _load_builtin_passes
    from irperf.pass_manager import pass_modules
    from irperf.plugins import load_plugin
    from passes.fusion_rules import strategy_modules

    _load_builtin_passes()
    for spec in specs:
        with plugin_output_on_stderr():
            module = load_plugin(spec)
        name = module.__name__
        defined = {*pass_modules(), *strategy_modules()}
        if not any(m == name or m.startswith(name + ".") for m in defined):
            raise UsageError(f"--load {show(spec)} registers no pass and no fusion strategy")


def plugin_output_on_stderr() -> contextlib.AbstractContextManager[object]:
    """While plugins load and run, what they print goes to stderr: stdout holds irperf's result
    alone, so ``--json`` stays JSON."""
    return contextlib.redirect_stdout(sys.stderr)


def refuse_unused(args: argparse.Namespace, rules: Sequence[tuple[str, bool, str]]) -> None:
    """Refuse a flag the request has no use for: ``rules`` are (flag, given and meaningless,
    why). A flag silently ignored hides a typo or a misunderstanding."""
    for flag, meaningless, why in rules:
        if meaningless:
            command = args.command
            raise UsageError(f"{command}: {flag} {why}")
