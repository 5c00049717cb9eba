"""A target's fit to a user's profile: the time-model parameters ``irperf calibrate`` wrote.

A target file may hold a ``[fit]`` table beside ``calibration = NAME``: what it gives replaces
what the named measurements would give (``docs/calibrate.md``), and everything it leaves out
(a format the profile never ran, the collectives of a one-chip profile) stays the calibration's.

- ``kernels``: the GEMM kernel model ``t = fixed_s + ideal / e_max`` per (format, fidelity);
- ``dram``: per op class (``irperf.ops.taxonomy.op_class``), an op's DRAM time
  ``fixed_s + bytes / bytes_per_s``, the rate in the calibration's reference terms (scaled by
  the target's rating over the calibration's ``reference_bytes_per_s``, as the measured rates
  are);
- ``collectives``: per kind, ``latency_s`` and ``s_per_byte`` of the collective model (the
  per-chip term stays the calibration's);
- ``dispatch_traced_s`` / ``dispatch_eager_s``: the op-to-op gap of a traced or eager run.
"""

from __future__ import annotations

from typing import Any

from attrs import Attribute, field, frozen

from irperf.checks import range_validator, show
from irperf.errors import TargetError
from targets.target import FIDELITIES, _compute_dtype, _printable

E_MAX_RANGE = (1e-3, 4.0)
"""An efficiency above 1 is possible (the fit's ideal uses the target's grid, not the cores
the profiled op ran on) but not above a few: outside this it is a unit slip."""


def _where(instance: object, attribute: Attribute[Any]) -> str:
    return attribute.name


def _between(lo: float, hi: float, *, integer: bool = False, optional: bool = False) -> Any:
    return range_validator(
        lo, hi, integer=integer, error=TargetError, where=_where, optional=optional
    )


def _fidelity(instance: object, attribute: Attribute[Any], value: str) -> None:
    if value not in FIDELITIES:
        raise TargetError(f"fidelity {show(value)} is not one of: {', '.join(FIDELITIES)}")


@frozen(kw_only=True)
class KernelFit:
    """The GEMM kernel model of one (format, fidelity), fitted to a profile's matmuls."""

    dtype: str = field(validator=_compute_dtype)
    fidelity: str = field(validator=_fidelity)
    e_max: float = field(validator=_between(*E_MAX_RANGE))
    fixed_s: float = field(validator=_between(0.0, 1.0))


def _op_class(instance: object, attribute: Attribute[Any], value: str) -> None:
    from irperf.ops.taxonomy import OP_CLASSES

    names = sorted({name for _, name in OP_CLASSES})
    if value not in names:
        raise TargetError(f"op_class {show(value)} is not one of: {', '.join(names)}")


@frozen(kw_only=True)
class DramFit:
    """One op class's DRAM time, ``fixed_s + bytes / bytes_per_s``, fitted to a profile."""

    op_class: str = field(validator=_op_class)
    bytes_per_s: float = field(validator=_between(1e6, 1e16))
    fixed_s: float = field(validator=_between(0.0, 1.0))


@frozen(kw_only=True)
class CollectiveFit:
    """One collective kind's floor and per-byte time, fitted to a profile's collectives."""

    kind: str = field()
    latency_s: float = field(validator=_between(0.0, 1.0))
    s_per_byte: float = field(validator=_between(0.0, 1e-3))

    @kind.validator
    def _kind(self, attribute: Attribute[Any], value: str) -> None:
        if value not in ("all_gather", "reduce_scatter", "all_reduce"):
            raise TargetError(
                f"collective kind {show(value)} is not one of: all_gather, all_reduce, "
                "reduce_scatter"
            )


@frozen(kw_only=True)
class Fitted:
    """What ``irperf calibrate`` fitted, and from what (see the module docstring)."""

    profile: str = field(validator=_printable)
    """The profile the fit was made from, as the user named it."""
    rows_used: int = field(validator=_between(0, 2**40, integer=True))
    kernels: tuple[KernelFit, ...] = ()
    dram: tuple[DramFit, ...] = ()
    collectives: tuple[CollectiveFit, ...] = ()
    dispatch_traced_s: float | None = field(default=None, validator=_between(0, 1, optional=True))
    dispatch_eager_s: float | None = field(default=None, validator=_between(0, 1, optional=True))

    def __attrs_post_init__(self) -> None:
        keys = [(k.dtype, k.fidelity) for k in self.kernels]
        for key in keys:
            if keys.count(key) > 1:
                raise TargetError(f"kernels list {key[0]}/{key[1]} twice")
        classes = [d.op_class for d in self.dram]
        for name in classes:
            if classes.count(name) > 1:
                raise TargetError(f"dram lists {show(name)} twice")
        kinds = [c.kind for c in self.collectives]
        for kind in kinds:
            if kinds.count(kind) > 1:
                raise TargetError(f"collectives list {kind} twice")

    def dram_for(self, op_class: str | None) -> DramFit | None:
        """The fitted DRAM time of ``op_class`` (None: not fitted)."""
        return next((d for d in self.dram if d.op_class == op_class), None)
