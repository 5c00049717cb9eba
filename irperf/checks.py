"""Input checks shared by configs, targets, requests and pass options: echoes, ranges, choices.

Every number a user can give irperf has a declared range and every name a list of choices; these
helpers state each check once, so a bad value anywhere reads the same: what it is, the range or
the choices, and the value itself echoed at most ``ECHO_CHARS`` characters long.
"""

from __future__ import annotations

import math
import os
import stat
import tomllib
from collections.abc import Callable, Iterable
from typing import Any

from attrs import Attribute, frozen

from irperf.errors import IrperfError

ECHO_CHARS = 80
"""How much of a user's input an error message repeats."""

_BIG_INT_BITS = 256
"""Integers longer than this are described by their size (``repr`` of a 5,000-digit int fails)."""


def show(value: object, limit: int = ECHO_CHARS) -> str:
    """``value`` for an error message: its repr, cut to ``limit`` characters."""
    if (
        isinstance(value, int)
        and not isinstance(value, bool)
        and value.bit_length() > _BIG_INT_BITS
    ):
        return f"an integer of {_digits(value):,} digits"
    text = repr(value)
    if len(text) <= limit:
        return text
    size = len(value) if isinstance(value, str) else len(text)
    return f"{text[: limit - 3]}... ({size:,} characters)"


def _digits(value: int) -> int:
    """Decimal digits of ``value``, exactly, without ``str`` (which refuses 4,300 digits)."""
    n = abs(value)
    d = max(1, int((n.bit_length() - 1) * math.log10(2)))  # within one of the answer
    while 10**d <= n:
        d += 1
    while d > 1 and 10 ** (d - 1) > n:
        d -= 1
    return d


MAX_INPUT_FILE_BYTES = 16 * 2**20
"""A config or target file larger than 16 MiB is no config (``/dev/zero`` would fill memory)."""


def input_file_problem(path: object, limit: int = MAX_INPUT_FILE_BYTES) -> str | None:
    """Why ``path`` cannot be read as an input file (a missing file, a directory, a device, a
    NUL in its name, more than ``limit`` bytes), or None."""
    try:
        text = os.fspath(path)  # type: ignore[call-overload]
    except TypeError:
        return f"path {show(path)} is not a path"
    if "\x00" in text:
        return f"path {show(text)} holds a NUL character"
    try:
        st = os.stat(text)
    except FileNotFoundError:
        return f"file not found: {show(text)}"
    except OSError as e:
        return f"file {show(text)} cannot be read: {e.strerror or e}"
    if stat.S_ISDIR(st.st_mode):
        return f"path {show(text)} is a directory, not a file"
    if not stat.S_ISREG(st.st_mode):
        return f"path {show(text)} is not a regular file (a device or a pipe)"
    if st.st_size > limit:
        return (
            f"file {show(text)} is {st.st_size:,} bytes, more than an input file may be "
            f"({limit // 2**20:,} MiB)"
        )
    return None


def message_of(error: BaseException) -> str:
    """``str(error)`` on one line, or a stand-in when a (user's) exception cannot print itself."""
    try:
        return one_line(str(error))
    except Exception:
        return f"<a {type(error).__name__} whose message cannot be printed>"


def one_line(text: str) -> str:
    """``text`` with its whitespace runs (newlines included) folded to single spaces."""
    return " ".join(text.split())


def all_finite(value: object) -> bool:
    """No NaN or infinity anywhere in ``value`` (numbers, or lists, tuples and dicts of them)."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(all_finite(v) for v in value.values())
    if isinstance(value, list | tuple):
        return all(all_finite(v) for v in value)
    return True


def is_int(value: object) -> bool:
    """An integer that is not a bool (JSON and TOML booleans are Python ints)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _fmt(x: float) -> str:
    return f"{x:,}" if isinstance(x, int) else f"{x:g}"


def range_text(lo: float, hi: float, integer: bool) -> str:
    kind = "an integer" if integer else "a number"
    return f"{kind} from {_fmt(lo)} to {_fmt(hi)}"


def in_range(value: object, lo: float, hi: float, *, integer: bool) -> bool:
    """``value`` is an int (or, unless ``integer``, a finite float) within ``[lo, hi]``.

    Integers are compared exactly, so a 400-digit one is simply out of range, never an
    ``OverflowError``; NaN and infinities are never in range.
    """
    if is_int(value):
        return lo <= value <= hi  # type: ignore[operator]
    if integer or not isinstance(value, float):
        return False
    return math.isfinite(value) and lo <= value <= hi


def check_range(
    value: object,
    lo: float,
    hi: float,
    *,
    integer: bool,
    what: str,
    error: type[IrperfError],
    bound: str = "",
) -> None:
    """Raise ``error`` unless ``value`` is in ``[lo, hi]`` (see ``in_range``); ``bound`` says
    where ``hi`` comes from (``max_position_embeddings``)."""
    if not in_range(value, lo, hi, integer=integer):
        why = f" ({bound})" if bound else ""
        raise error(f"{what} must be {range_text(lo, hi, integer)}{why}, got {show(value)}")


@frozen
class RangeCheck:
    """An attrs validator for ``check_range``; ``where`` names the field for the message. Its
    bounds are attributes, so a message elsewhere can state the same range."""

    lo: float
    hi: float
    integer: bool
    error: type[IrperfError]
    where: Callable[[Any, Attribute[Any]], str]
    optional: bool = False

    def __call__(self, inst: Any, attribute: Attribute[Any], value: Any) -> None:
        if self.optional and value is None:
            return
        what = self.where(inst, attribute)
        check_range(value, self.lo, self.hi, integer=self.integer, what=what, error=self.error)

    @property
    def text(self) -> str:
        return range_text(self.lo, self.hi, self.integer)


def range_validator(
    lo: float,
    hi: float,
    *,
    integer: bool,
    error: type[IrperfError],
    where: Callable[[Any, Attribute[Any]], str],
    optional: bool = False,
) -> RangeCheck:
    """An attrs validator for ``check_range`` over ``[lo, hi]``."""
    return RangeCheck(lo, hi, integer, error, where, optional)


def choose(value: object, valid: Iterable[str], *, what: str, error: type[IrperfError]) -> str:
    """``value`` as one of ``valid`` (lower-case names), matched without regard to case."""
    choices = list(valid)
    if isinstance(value, str) and value.lower() in choices:
        return value.lower()
    raise error(f"unknown {what} {show(value)}; valid: {', '.join(choices)}")


def parse_toml(text: str, where: str, error: type[IrperfError]) -> dict[str, Any]:
    """TOML text as a table; any failure (bad syntax, nesting too deep, an integer longer than
    Python converts) is one ``error`` line naming ``where``."""
    try:
        return tomllib.loads(text)
    except RecursionError:
        raise error(f"{where}: malformed TOML: nested too deeply") from None
    except tomllib.TOMLDecodeError as e:
        raise error(f"{where}: malformed TOML: {one_line(str(e))}") from None
    except ValueError as e:  # an integer longer than Python converts (4,300 digits)
        raise error(f"{where}: malformed TOML: {one_line(str(e))[:ECHO_CHARS]}") from None


def read_input_text(
    path: str, where: str, error: type[IrperfError], limit: int = MAX_INPUT_FILE_BYTES
) -> str:
    """A user's input file as text: ``input_file_problem`` and reading, each failure one
    ``error`` line naming ``where``."""
    problem = input_file_problem(path, limit)
    if problem:
        raise error(f"{where}: {problem}")
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except UnicodeDecodeError as e:
        raise error(f"{where}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except OSError as e:
        raise error(f"{where}: cannot read it: {e.strerror or one_line(str(e))}") from None
