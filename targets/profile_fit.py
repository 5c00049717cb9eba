"""Fit a target's time model to a device profile (``irperf calibrate``, ``docs/calibrate.md``).

Each profiled op is given irperf's op class from its op code
(``targets.profile_ops.device_class``), and each class fits the part of ``op-time``'s model
that times it:

- **matmul**: per (format, fidelity), the kernel model ``t = fixed_s + ideal / e_max``, ``ideal``
  computed as ``op-time`` computes it (the padded product's slowest core on the target's grid,
  rows rounded up to the matrix engine's face, at one core's rate for the fidelity), by least
  squares of relative error (``calibration.fit_line``). A matmul whose bytes at the measured
  DRAM rate take 90% of its time or more is DRAM-bound: it says nothing about the kernel and is
  left out. One distinct size cannot fix both terms: ``fixed_s`` is then the calibration's.
- **other ops that move data** (binary, unary, softmax, norm, rope, typecast, data movement,
  cache updates, embedding): per class ``t = fixed_s + bytes / rate``, by the same least squares
  (one distinct size: through the origin), from the rows whose tensors are all in DRAM.
- **collectives**: per kind ``latency_s`` and ``s_per_byte`` of the collective model, on the
  bytes one chip sends (the ring formula), the per-chip term the calibration's.
- **dispatch**: the median op-to-op latency, the traced gap if under 6.5 us (tt-perf-report's
  threshold; trace capture removes the host's part), else the eager one, unless told.

Attention, convolutions and ops of no class are matched (by ``irperf compare``) but not
fitted: their rows are listed as unused, each with its reason.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence

from attrs import evolve, frozen

from irperf.checks import show
from irperf.errors import IrperfError, ProfileError, TargetError
from passes.op_time import matmul_ideal_s
from passes.tiles import TileWork, on_cores, width_sharded
from targets.calibration import (
    KernelModel,
    fit_line,
    gemm_models,
    link_bytes,
    link_models,
    load_calibration,
    model_for,
)
from targets.fitted import E_MAX_RANGE, CollectiveFit, DramFit, Fitted, KernelFit
from targets.profile import Profile, ProfileRow
from targets.profile_ops import compute_format, device_class, matmul_of, moved_bytes, tensors
from targets.target import Target

DRAM_CLASSES = frozenset(
    {
        "binary",
        "unary",
        "softmax",
        "norm",
        "rope",
        "typecast",
        "data_movement",
        "cache_update",
        "embedding",
    }
)
COLLECTIVES = ("all_gather", "reduce_scatter", "all_reduce")
DRAM_BOUND_SHARE = 0.9
"""A matmul whose bytes at the measured DRAM rate take this share of its time or more is
DRAM-bound: ``op-time`` takes the larger of its kernel and DRAM times, so the row says little
of its kernel, and is left out of the kernel fit."""
TRACED_GAP_S = 6.5e-6
"""tt-perf-report's op-to-op threshold: a median gap under it is a traced run's."""


def matmul_ideal(row: ProfileRow, target: Target) -> tuple[tuple[str, str], float]:
    """The row's (format, fidelity) and its ideal time as ``op-time`` computes it."""
    c = matmul_of(row)
    dt = compute_format(row).name
    fidelity = row.fidelity or target.fidelity_for(dt)
    weight = row.inputs[1] if len(row.inputs) > 1 else None
    if weight is not None and weight.home == "dram" and weight.sharded and c.batch == 1:
        shape, slowest, imbalance, cores = width_sharded(c, target.grid)
    else:
        shape, slowest, imbalance, cores = on_cores(c, target.grid)
    tiled = TileWork(
        padded_flops=c.padded_flops,
        padded_mkn=c.padded_mkn,
        grid=shape,
        per_core_tiles=slowest,
        imbalance=imbalance,
        live_rows=c.m,
        cores=cores,
    )
    return (dt, fidelity), matmul_ideal_s(tiled, target, dt, fidelity)


def reference_rate(target: Target, name: str) -> float:
    """A measured DRAM rate of the target's calibration, scaled to the target's rating."""
    assert target.calibration is not None
    dram = load_calibration(target.calibration).dram
    reference = dram.get("reference_bytes_per_s", target.dram_bandwidth_bytes_per_s_per_chip)
    return dram[name] * target.dram_bandwidth_bytes_per_s_per_chip / reference


@frozen(kw_only=True)
class RowFit:
    """One row the fit used, beside what the fitted model predicts for it."""

    row: int
    op_class: str
    what: str
    """The fit it fed: ``bf16 hifi4``, ``binary``, ``all_gather``."""
    measured_s: float
    predicted_s: float

    @property
    def error_pct(self) -> float:
        return 100 * (self.predicted_s - self.measured_s) / self.measured_s


@frozen(kw_only=True)
class Unused:
    row: int
    op_code: str
    reason: str


@frozen(kw_only=True)
class ProfileFit:
    """What ``fit_profile`` found: the fitted parameters, the rows behind them, the rest."""

    fitted: Fitted
    dispatch_mode: str | None
    """``trace`` or ``eager``: which gap the op-to-op latency fitted (None: none measured)."""
    used: tuple[RowFit, ...]
    unused: tuple[Unused, ...]

    def mean_abs_error_pct(self, what: str | None = None) -> float:
        rows = [r for r in self.used if what is None or r.op_class == what]
        return statistics.fmean(abs(r.error_pct) for r in rows) if rows else 0.0


def fit_profile(profile: Profile, target: Target, dispatch: str = "auto") -> ProfileFit:
    """Fit ``target``'s time model to ``profile`` (the module docstring's rules)."""
    if target.calibration is None:
        raise TargetError(
            f"{target.label} names no calibration (the measured microbenchmarks a fit starts "
            "from): calibrate a target whose file names one, such as n150, n300 or t3000"
        )
    unused = [Unused(row=s.row, op_code=s.op_code, reason=s.reason) for s in profile.skipped]
    by_class: dict[str, list[ProfileRow]] = {}
    for row in profile.rows:
        cls = device_class(row.op_code)
        if cls is None:
            unused.append(_unused(row, f"op code {row.op_code!r} maps to no irperf op class"))
        else:
            by_class.setdefault(cls, []).append(row)
    used: list[RowFit] = []
    kernels = _fit_matmuls(by_class.pop("matmul", []), target, used, unused)
    dram = _fit_dram(by_class, target, used, unused)
    chips = len({r.device_id for r in profile.rows})
    collectives = _fit_collectives(by_class, target, max(chips, 2), used, unused)
    for cls, rows in sorted(by_class.items()):
        unused += [_unused(r, f"{cls}: matched by irperf compare, not fitted") for r in rows]
    gaps = [r.op_to_op_latency_ns * 1e-9 for r in profile.rows if r.op_to_op_latency_ns > 0]
    gap = statistics.median(gaps) if gaps else None
    mode = None
    if gap is not None:
        mode = dispatch if dispatch != "auto" else "trace" if gap < TRACED_GAP_S else "eager"
    fitted = Fitted(
        profile=profile.source,
        rows_used=len(used),
        kernels=kernels,
        dram=dram,
        collectives=collectives,
        dispatch_traced_s=gap if mode == "trace" else None,
        dispatch_eager_s=gap if mode == "eager" else None,
    )
    if not used and gap is None:
        raise ProfileError(
            f"{show(profile.source)}: nothing to fit: {len(profile.rows):,} device rows, none a "
            "matmul, data-moving op or collective irperf can fit, and no op-to-op latency"
        )
    return ProfileFit(
        fitted=fitted,
        dispatch_mode=mode,
        used=tuple(used),
        unused=tuple(sorted(unused, key=lambda u: u.row)),
    )


def _unused(row: ProfileRow, reason: str) -> Unused:
    return Unused(row=row.row, op_code=row.op_code, reason=reason)


def _fit_matmuls(
    rows: Sequence[ProfileRow], target: Target, used: list[RowFit], unused: list[Unused]
) -> tuple[KernelFit, ...]:
    base = gemm_models(target)
    groups: dict[tuple[str, str], list[tuple[ProfileRow, float]]] = {}
    for row in rows:
        if len(row.inputs) < 2:
            unused.append(_unused(row, "matmul with one input: no weight to multiply by"))
            continue
        try:
            key, ideal = matmul_ideal(row, target)
        except IrperfError as e:  # a format the target has no rate for
            unused.append(_unused(row, f"matmul: {e}"))
            continue
        sharded = any(t.home == "dram" and t.sharded for t in row.inputs)
        rate = reference_rate(
            target, "sharded_matmul_bytes_per_s" if sharded else "interleaved_matmul_bytes_per_s"
        )
        measured = row.kernel_duration_ns * 1e-9
        dram_bytes = sum(t.bytes for t in tensors(row) if t.home == "dram")
        if dram_bytes / rate >= DRAM_BOUND_SHARE * measured:
            why = (
                f"matmul: DRAM-bound (its bytes at {rate / 1e9:.0f} GB/s take 90% of its time "
                "or more)"
            )
            unused.append(_unused(row, why))
            continue
        groups.setdefault(key, []).append((row, ideal))
    out = []
    for key, group in groups.items():
        xs = [ideal for _, ideal in group]
        ys = [r.kernel_duration_ns * 1e-9 for r, _ in group]
        model = _kernel_fit(xs, ys, model_for(base, *key).fixed_s)
        if model is None or not E_MAX_RANGE[0] <= model.e_max <= E_MAX_RANGE[1]:
            why = "no efficiency" if model is None else f"e_max {model.e_max:.3g}"
            unused += [
                _unused(r, f"matmul {key[0]} {key[1]}: the fit gave {why}") for r, _ in group
            ]
            continue
        out.append(
            KernelFit(dtype=key[0], fidelity=key[1], e_max=model.e_max, fixed_s=model.fixed_s)
        )
        used += [
            RowFit(
                row=r.row,
                op_class="matmul",
                what=f"{key[0]} {key[1]}",
                measured_s=y,
                predicted_s=model.seconds(x),
            )
            for (r, x), y in zip(group, ys, strict=True)
        ]
    return tuple(out)


def _kernel_fit(xs: list[float], ys: list[float], fixed_s: float) -> KernelModel | None:
    """``y = fixed + x / e`` by least squares of relative error; with one distinct ``x``, or a
    negative intercept, ``fixed`` is held at ``fixed_s`` (the calibration's) or 0."""
    if len(set(xs)) >= 2:
        a, c = _line(xs, ys)
        if a >= 0 and c > 0 and math.isfinite(1 / c):
            return KernelModel(1 / c, a)
    for fixed in (fixed_s, 0.0):
        # minimise sum(((fixed + c x - y) / y)^2): with r = x / y, g = 1 - fixed / y
        rs = [x / y for x, y in zip(xs, ys, strict=True)]
        gs = [1 - fixed / y for y in ys]
        rr = sum(r * r for r in rs)
        c = sum(r * g for r, g in zip(rs, gs, strict=True)) / rr if rr else 0.0
        if c > 0 and math.isfinite(1 / c):
            return KernelModel(1 / c, fixed)
    return None


def _line(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """``fit_line``, or no line (-1, 0) where the rows cannot pin one down (times spanning so
    many magnitudes that the normal equations vanish in floating point)."""
    try:
        a, c = fit_line(xs, ys)
    except ZeroDivisionError:
        return -1.0, 0.0
    return (a, c) if math.isfinite(a) and math.isfinite(c) else (-1.0, 0.0)


def _fit_dram(
    by_class: dict[str, list[ProfileRow]],
    target: Target,
    used: list[RowFit],
    unused: list[Unused],
) -> tuple[DramFit, ...]:
    assert target.calibration is not None
    dram = load_calibration(target.calibration).dram
    scale = dram.get("reference_bytes_per_s", target.dram_bandwidth_bytes_per_s_per_chip) / (
        target.dram_bandwidth_bytes_per_s_per_chip
    )
    out = []
    for cls in sorted(set(by_class) & DRAM_CLASSES):
        rows = by_class.pop(cls)
        good = [r for r in rows if all(t.home == "dram" for t in tensors(r))]
        unused += [
            _unused(r, f"{cls}: a tensor in L1, no DRAM rate to fit") for r in rows if r not in good
        ]
        if not good:
            continue
        xs = [float(moved_bytes(r)) for r in good]
        ys = [r.kernel_duration_ns * 1e-9 for r in good]
        model = None
        if len(set(xs)) < 2:  # one size: the calibration's rate and a fitted floor, as for
            # collectives (through the origin, a single size makes any floor a slower rate)
            rate = dram["read_bytes_per_s"] / scale
            fixed = statistics.fmean(y - x / rate for x, y in zip(xs, ys, strict=True))
            model = KernelModel(e_max=rate, fixed_s=fixed) if fixed >= 0 else None
        if model is None:
            model = _kernel_fit(xs, ys, 0.0)  # e_max is the rate here: y = fixed + x / rate
        if model is None or not 1e6 <= model.e_max * scale <= 1e16:
            why = "no rate" if model is None else f"{model.e_max:.3g} B/s"
            unused += [_unused(r, f"{cls}: the fit gave {why}") for r in good]
            continue
        rate, fixed = model.e_max, model.fixed_s
        out.append(DramFit(op_class=cls, bytes_per_s=rate * scale, fixed_s=fixed))
        used += [
            RowFit(row=r.row, op_class=cls, what=cls, measured_s=y, predicted_s=fixed + x / rate)
            for r, x, y in zip(good, xs, ys, strict=True)
        ]
    return tuple(out)


def _fit_collectives(
    by_class: dict[str, list[ProfileRow]],
    target: Target,
    chips: int,
    used: list[RowFit],
    unused: list[Unused],
) -> tuple[CollectiveFit, ...]:
    base = link_models(target)
    out = []
    for kind in COLLECTIVES:
        rows = by_class.pop(kind, [])
        if not rows:
            continue
        hop = base[kind].hop_s if kind in base else 0.0
        payload = [r.outputs[0].bytes if kind == "all_gather" else r.inputs[0].bytes for r in rows]
        xs = [float(link_bytes(kind, chips, p)) for p in payload]
        ys = [r.kernel_duration_ns * 1e-9 - hop * (chips - 2) for r in rows]
        if min(ys) <= 0:
            unused += [_unused(r, f"{kind}: shorter than the per-chip term") for r in rows]
            continue
        if len(set(xs)) >= 2:
            a, c = _line(xs, ys)
        else:
            a, c = -1.0, 0.0
        if a < 0 or c <= 0:  # one size, or no floor: the calibration's rate, a fitted floor
            c = base[kind].s_per_byte if kind in base else 0.0
            a = statistics.fmean(y - c * x for x, y in zip(xs, ys, strict=True))
        if a < 0 or not 0 <= c <= 1e-3:
            unused += [_unused(r, f"{kind}: the fit gave no floor") for r in rows]
            continue
        out.append(CollectiveFit(kind=kind, latency_s=a, s_per_byte=c))
        used += [
            RowFit(
                row=r.row,
                op_class=kind,
                what=kind,
                measured_s=r.kernel_duration_ns * 1e-9,
                predicted_s=a + hop * (chips - 2) + c * x,
            )
            for r, x in zip(rows, xs, strict=True)
        ]
    return tuple(out)


def fitted_target(target: Target, fit: ProfileFit, name: str) -> Target:
    """``target`` with the fit, named ``name``."""
    source = (
        f"fit: irperf calibrate from {fit.fitted.profile}, {fit.fitted.rows_used:,} rows "
        f"used, mean absolute error {fit.mean_abs_error_pct():.1f}% over them"
    )
    f = fit.fitted
    kernels = tuple(evolve(k, e_max=_sig(k.e_max), fixed_s=_sig(k.fixed_s)) for k in f.kernels)
    links = tuple(
        evolve(c, latency_s=_sig(c.latency_s), s_per_byte=_sig(c.s_per_byte)) for c in f.collectives
    )
    rounded = evolve(
        f,
        kernels=kernels,
        dram=tuple(
            evolve(d, bytes_per_s=_sig(d.bytes_per_s), fixed_s=_sig(d.fixed_s)) for d in f.dram
        ),
        collectives=links,
        dispatch_traced_s=_sig(f.dispatch_traced_s) if f.dispatch_traced_s is not None else None,
        dispatch_eager_s=_sig(f.dispatch_eager_s) if f.dispatch_eager_s is not None else None,
    )
    fitted_to = f"fitted to {fit.fitted.profile}"
    described = target.description.split("; fitted to ")[0]  # a refit replaces the last fit
    try:
        return evolve(
            target,
            name=name,
            description=f"{described}; {fitted_to}",
            fit=rounded,
            sources=(*target.sources, source),
        )
    except TargetError as e:  # a fitted figure a target file cannot hold
        raise ProfileError(f"{fit.fitted.profile}: the fit gives no usable target: {e}") from None


def _sig(x: float) -> float:
    """Six significant digits: far finer than any fit's error, and a file a person can read;
    a figure below 1e-15 (a floor of 1e-20 s: rounding in the fit) is none."""
    if abs(x) < 1e-15:
        return 0.0
    return float(f"{x:.6g}")


def class_errors(fit: ProfileFit) -> Mapping[str, tuple[int, float]]:
    """Per op class: rows used and the fit's mean absolute percent error on them."""
    out: dict[str, tuple[int, float]] = {}
    for cls in dict.fromkeys(r.op_class for r in fit.used):
        out[cls] = (sum(r.op_class == cls for r in fit.used), fit.mean_abs_error_pct(cls))
    return out
