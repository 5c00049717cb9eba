"""Measured microbenchmarks of a chip family and the fits the time model takes from them.

A target names its family (``calibration = "wormhole"``); ``targets/data/calibration/NAME.toml``
holds the measurements (GEMM throughput per format and fidelity, collective latency per kind,
DRAM bandwidth per access pattern, dispatch gaps), each with its source. Two fits come from
them, deterministic and computed once per process (``docs/time.md``):

- **GEMM kernel time** per (format, fidelity): ``t = fixed_s + ideal / e_max``, ``ideal`` the
  slowest core's tile products at the fidelity's rate on the grid the benchmark ran on, so the
  efficiency ``ideal / t`` grows with the per-core work towards ``e_max``. ``e_max`` per column
  from the rows of M = K = N >= 4096 (whose kernels last milliseconds: the untraced host gap is a
  few percent there), least squares of relative error through the origin; ``fixed_s``, one per
  chip, from the traced measurements (their time less the traced dispatch gap, less
  ``ideal / e_max``), averaged. A row of the untraced table is predicted as ``gemm_dispatch_s +
  t``; small rows carry more host time than that, which their printed error shows.
- **Collective latency** per kind: ``t = a + hop * (N - 2) + c * link_bytes``, ``a`` and ``c``
  fitted to the 2-chip table by least squares weighted by ``1 / t^2`` (relative errors),
  ``link_bytes`` what one chip sends (the bytes pass's ring formula), ``hop`` the published
  per-chip term.
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from attrs import frozen

from irperf.errors import TargetError
from targets.target import Target

DATA = Path(__file__).parent / "data" / "calibration"
TILE_FLOPS = 2 * 32**3
"""FLOPs of one 32x32x32 tile product."""


@frozen
class GemmRow:
    size: int
    """M = K = N."""
    tflops: float


@frozen
class CollectiveRow:
    payload_bytes: int
    """T, the whole logical tensor."""
    seconds: float


@frozen
class Calibration:
    name: str
    gemm: Mapping[tuple[str, str], tuple[GemmRow, ...]]
    gemm_traced: Mapping[tuple[str, str], tuple[GemmRow, ...]]
    collectives: Mapping[tuple[str, int], tuple[CollectiveRow, ...]]
    hop_s: Mapping[str, float]
    dram: Mapping[str, float]
    gemm_dispatch_s: float
    dispatch_traced_s: float
    dispatch_eager_s: float
    sources: tuple[str, ...]


@frozen
class KernelModel:
    """A matmul kernel's time: ``fixed_s + ideal_s / e_max``."""

    e_max: float
    fixed_s: float

    def seconds(self, ideal_s: float) -> float:
        return self.fixed_s + ideal_s / self.e_max

    def efficiency(self, ideal_s: float) -> float:
        """The fraction of the fidelity's peak reached: ``ideal_s`` over the kernel time."""
        return ideal_s / self.seconds(ideal_s)


@frozen
class CollectiveModel:
    """``t = latency_s + hop_s * (chips - 2) + s_per_byte * link_bytes``."""

    latency_s: float
    s_per_byte: float
    hop_s: float

    def seconds(self, chips: int, link_bytes: int) -> float:
        return self.latency_s + self.hop_s * max(chips - 2, 0) + self.s_per_byte * link_bytes


@functools.cache
def load_calibration(name: str) -> Calibration:
    path = DATA / f"{name}.toml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in DATA.glob("*.toml")))
        raise TargetError(f"unknown calibration {name!r}; known: {known}")
    data: dict[str, Any] = tomllib.loads(path.read_text())
    gemm = {
        (g["dtype"], g["fidelity"]): tuple(GemmRow(int(s), float(t)) for s, t in g["tflops"])
        for g in data["gemm"]
    }
    traced: dict[tuple[str, str], tuple[GemmRow, ...]] = {}
    for g in data.get("gemm_traced", []):
        key = (g["dtype"], g["fidelity"])
        traced[key] = (*traced.get(key, ()), GemmRow(int(g["size"]), float(g["tflops"])))
    collectives = {
        (c["kind"], int(c["chips"])): tuple(
            CollectiveRow(int(b), float(us) * 1e-6) for b, us in c["us"]
        )
        for c in data["collective"]
    }
    return Calibration(
        name=data["name"],
        gemm=gemm,
        gemm_traced=traced,
        collectives=collectives,
        hop_s={k: float(v) for k, v in data["hop_s"].items()},
        dram={k: float(v) for k, v in data["dram"].items()},
        gemm_dispatch_s=float(data["gemm_dispatch_s"]),
        dispatch_traced_s=float(data["dispatch_traced_s"]),
        dispatch_eager_s=float(data["dispatch_eager_s"]),
        sources=tuple(data["sources"]),
    )


def slowest_core_work(size: int, grid: tuple[int, int]) -> int:
    """Tile products on the slowest core of a 2D-multicast ``size``-cubed matmul on ``grid``."""
    t = -(-size // 32)
    gy, gx = min(grid[0], t), min(grid[1], t)
    return -(-t // gy) * -(-t // gx) * t


def ideal_s(size: int, per_core_flops_per_s: float, grid: tuple[int, int]) -> float:
    """The slowest core's tile products of a ``size``-cubed matmul at the peak rate."""
    return slowest_core_work(size, grid) * TILE_FLOPS / per_core_flops_per_s


LARGE = 4096
"""Rows at least this size fit ``e_max``: their kernels dwarf the host gap."""


def fit_line(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """``y = a + c x`` by least squares weighted by ``1 / y^2`` (relative errors)."""
    w = [1 / y**2 for y in ys]
    sw = sum(w)
    sx = sum(wi * x for wi, x in zip(w, xs, strict=True))
    sy = sum(wi * y for wi, y in zip(w, ys, strict=True))
    sxx = sum(wi * x * x for wi, x in zip(w, xs, strict=True))
    sxy = sum(wi * x * y for wi, x, y in zip(w, xs, ys, strict=True))
    c = (sw * sxy - sx * sy) / (sw * sxx - sx * sx)
    return (sy - c * sx) / sw, c


def link_bytes(kind: str, chips: int, payload: int) -> int:
    """What one chip sends in a ring collective of ``payload`` bytes (``passes/bytes.py``)."""
    if kind == "all_reduce":
        return 2 * (chips - 1) * -(-payload // chips)
    return (chips - 1) * payload // chips


@functools.cache
def collective_models(name: str) -> dict[str, CollectiveModel]:
    cal = load_calibration(name)
    out = {}
    for (kind, chips), rows in cal.collectives.items():
        xs = [float(link_bytes(kind, chips, r.payload_bytes)) for r in rows]
        a, c = fit_line(xs, [r.seconds for r in rows])
        out[kind] = CollectiveModel(a, c, cal.hop_s[kind])
    return out


@functools.cache
def gemm_models(target: Target) -> dict[tuple[str, str], KernelModel]:
    """Per (format, fidelity) column of the target's GEMM table, its kernel model."""
    if target.calibration is None:
        raise TargetError(f"{target.label} names no calibration")
    cal = load_calibration(target.calibration)
    e_max: dict[tuple[str, str], float] = {}
    for key, rows in cal.gemm.items():
        rate = target.rate(*key).flops_per_s_per_core
        big = [r for r in rows if r.size >= LARGE]
        # kernel ~ ideal / e: least squares of relative error, 1/e = mean(kernel / ideal)
        ratios = [
            (2 * r.size**3 / (r.tflops * 1e12) - cal.gemm_dispatch_s)
            / ideal_s(r.size, rate, target.grid)
            for r in big
        ]
        e_max[key] = len(ratios) / sum(ratios)
    fixed = []
    for key, rows in cal.gemm_traced.items():
        rate = target.rate(*key).flops_per_s_per_core
        for r in rows:
            measured = 2 * r.size**3 / (r.tflops * 1e12) - cal.dispatch_traced_s
            e = e_max.get(key) or next(iter(e_max.values()))
            fixed.append(measured - ideal_s(r.size, rate, target.grid) / e)
    fixed_s = max(sum(fixed) / len(fixed), 0.0) if fixed else 0.0
    models = {key: KernelModel(e, fixed_s) for key, e in e_max.items()}
    for k in target.fit.kernels if target.fit is not None else ():  # a profile's fit wins
        models[(k.dtype, k.fidelity)] = KernelModel(k.e_max, k.fixed_s)
    return models


@functools.cache
def link_models(target: Target) -> dict[str, CollectiveModel]:
    """The target's collective models: its calibration's, with a profile's fit over them."""
    if target.calibration is None:
        raise TargetError(f"{target.label} names no calibration")
    models = dict(collective_models(target.calibration))
    hops = load_calibration(target.calibration).hop_s
    for c in target.fit.collectives if target.fit is not None else ():
        models[c.kind] = CollectiveModel(c.latency_s, c.s_per_byte, hops.get(c.kind, 0.0))
    return models


def dispatch_gaps(target: Target) -> tuple[float, float]:
    """The traced and the eager op-to-op gap: the calibration's, or a profile's fit."""
    if target.calibration is None:
        raise TargetError(f"{target.label} names no calibration")
    cal = load_calibration(target.calibration)
    fit = target.fit
    traced = fit.dispatch_traced_s if fit is not None else None
    eager = fit.dispatch_eager_s if fit is not None else None
    return (
        cal.dispatch_traced_s if traced is None else traced,
        cal.dispatch_eager_s if eager is None else eager,
    )


def model_for(
    models: Mapping[tuple[str, str], KernelModel], dtype: str, fidelity: str
) -> KernelModel:
    """The model measured for ``dtype`` at ``fidelity``; else the first measured at that
    fidelity; else BF16 at HiFi4's (the table's first column)."""
    found = models.get((dtype, fidelity))
    if found is not None:
        return found
    for (_, f), model in models.items():
        if f == fidelity:
            return model
    return next(iter(models.values()))


@frozen
class FitRow:
    """One measured row beside the fit's prediction for it."""

    what: str
    size: int
    measured: float
    predicted: float

    @property
    def error_pct(self) -> float:
        return 100 * (self.predicted - self.measured) / self.measured


def gemm_fit_rows(target: Target) -> list[FitRow]:
    """Every GEMM row, untraced then traced: measured and predicted TFLOP/s."""
    assert target.calibration is not None
    cal = load_calibration(target.calibration)
    models = gemm_models(target)
    out = []
    for table, gap, label in (
        (cal.gemm, cal.gemm_dispatch_s, ""),
        (cal.gemm_traced, cal.dispatch_traced_s, " traced"),
    ):
        for key, rows in table.items():
            rate = target.rate(*key).flops_per_s_per_core
            for row in rows:
                t = gap + model_for(models, *key).seconds(ideal_s(row.size, rate, target.grid))
                predicted = 2 * row.size**3 / t / 1e12
                out.append(FitRow(f"{key[0]} {key[1]}{label}", row.size, row.tflops, predicted))
    return out


def collective_fit_rows(name: str) -> list[FitRow]:
    """Every collective row: measured and fitted microseconds."""
    cal = load_calibration(name)
    models = collective_models(name)
    out = []
    for (kind, chips), rows in cal.collectives.items():
        for r in rows:
            t = models[kind].seconds(chips, link_bytes(kind, chips, r.payload_bytes))
            out.append(FitRow(f"{kind} x{chips}", r.payload_bytes, r.seconds * 1e6, t * 1e6))
    return out
