"""The hardware Target record: chips, core grid, memories, matrix-engine rates and links."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any

from attrs import Attribute, Factory, field, frozen

from irperf.checks import in_range, is_int, range_validator, show
from irperf.dtypes import DTYPES
from irperf.errors import TargetError

if TYPE_CHECKING:
    from targets.fitted import Fitted

ANY_DTYPE = "any"
"""A compute rate that applies to every data format (GPUs, idealised targets)."""

NO_FIDELITY = "none"
"""A compute rate with no math-fidelity phases (GPUs, idealised targets)."""

FIDELITIES = ("lofi", "hifi2", "hifi3", "hifi4", NO_FIDELITY)
KINDS = ("idealised", "tenstorrent", "gpu")

_Validator = Callable[[Any, "Attribute[Any]", Any], None]


def _owner(instance: object) -> str:
    name = getattr(instance, "name", None)
    return f"target {show(name)}: " if isinstance(name, str) else ""


def _printable(instance: object, attribute: Attribute[Any], value: str) -> None:
    """Names and descriptions are printed in headers: no newlines or terminal escapes."""
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise TargetError(f"{attribute.name} must be one line of text, got {show(value)}")


def _nonempty(instance: object, attribute: Attribute[Any], value: str) -> None:
    if not value.strip():
        raise TargetError(f"{attribute.name} must not be empty")
    _printable(instance, attribute, value)


def _where(instance: object, attribute: Attribute[Any]) -> str:
    return f"{_owner(instance)}{attribute.name}"


def _between(lo: float, hi: float, *, integer: bool = False, optional: bool = False) -> _Validator:
    """Every number a target states has a physical range; outside it is a typo or a unit slip
    (``1e-320`` B/s would make every latency infinite), so it is refused."""
    return range_validator(
        lo, hi, integer=integer, error=TargetError, where=_where, optional=optional
    )


# The ranges: generous bounds on real machines, so every time irperf derives stays finite.
_CHIPS = _between(1, 1024, integer=True)
_BYTES = _between(1, 2**50, integer=True)  # up to 1 PiB
_RATE = _between(1e3, 1e17)  # FLOP/s per core
_OPTIONAL_RATE = _between(1e3, 1e17, optional=True)
_BANDWIDTH = _between(1e6, 1e16)  # B/s
_OPTIONAL_BANDWIDTH = _between(1e6, 1e16, optional=True)
_SECONDS = _between(0.0, 1.0)
_CLOCK = _between(1e6, 1e11)  # Hz
_COUNT = _between(1, 4096, integer=True)


def _optional_name(instance: object, attribute: Attribute[Any], value: str | None) -> None:
    if value is not None and (not isinstance(value, str) or not value.isidentifier()):
        raise TargetError(f"{_where(instance, attribute)} must be a name, got {show(value)}")


def _grid(instance: object, attribute: Attribute[Any], value: tuple[int, int]) -> None:
    if len(value) != 2 or not all(in_range(v, 1, 1024, integer=True) for v in value):
        raise TargetError(
            f"{_where(instance, attribute)} must be two integers from 1 to 1,024, "
            f"got {show(list(value))}"
        )


def _one_of(valid: Collection[str]) -> _Validator:
    def check(instance: object, attribute: Attribute[Any], value: str) -> None:
        if value not in valid:
            choices = ", ".join(sorted(valid))
            raise TargetError(
                f"{_where(instance, attribute)} {show(value)} is not one of: {choices}"
            )

    return check


_compute_dtype = _one_of([*DTYPES, ANY_DTYPE])
_fidelity = _one_of(FIDELITIES)


@frozen(kw_only=True)
class ComputeRate:
    """Matrix-engine throughput of one core for one data format at one math fidelity."""

    dtype: str = field(validator=_compute_dtype)
    fidelity: str = field(validator=_fidelity)
    flops_per_s_per_core: float = field(validator=_RATE)


@frozen(kw_only=True)
class Link:
    """Chip-to-chip links usable by user kernels; bandwidth is per link and per direction."""

    bandwidth_bytes_per_s: float = field(validator=_BANDWIDTH)
    latency_s: float = field(validator=_SECONDS)
    count: int = field(validator=_COUNT)


@frozen(kw_only=True)
class Target:
    """One machine: ``chips`` identical chips in a ``mesh``, each with a ``grid`` of cores.

    Sizes and rates are per core or per chip as their names say; a card's totals are written
    out where they are meant (``chips * dram_bandwidth_bytes_per_s_per_chip``). ``compute``
    lists matrix-engine rates per (dtype, fidelity); ``rate`` looks one up.
    Matmuls whose input has fewer than ``small_m_rows`` rows run ``small_m_rate_divisor`` times
    slower (0 rows: no such penalty). Elementwise rates are None where the reference has no figure.
    """

    name: str = field(validator=_nonempty)
    description: str = field(validator=_printable)
    kind: str = field(validator=_one_of(KINDS))
    chips: int = field(validator=_CHIPS)
    mesh: tuple[int, int] = field(
        default=Factory(lambda self: (1, self.chips), takes_self=True), validator=_grid
    )
    grid: tuple[int, int] = field(validator=_grid)
    clock_hz: float = field(validator=_CLOCK)
    l1_bytes_per_core: int = field(validator=_BYTES)
    l1_usable_bytes_per_core: int = field(
        default=Factory(lambda self: self.l1_bytes_per_core, takes_self=True),
        validator=_BYTES,
    )
    dram_bytes_per_chip: int = field(validator=_BYTES)
    dram_channels_per_chip: int = field(validator=_COUNT)
    dram_bandwidth_bytes_per_s_per_chip: float = field(validator=_BANDWIDTH)
    compute: tuple[ComputeRate, ...]
    default_dtype: str = field(validator=_compute_dtype)
    default_fidelity: str = field(validator=_fidelity)
    fidelity_by_dtype: tuple[tuple[str, str], ...] = ()
    """The fidelity each format runs at unless asked otherwise (Wormhole: BF16 at HiFi4, BFP8 at
    HiFi2, BFP4 at LoFi); formats not listed use ``default_fidelity``."""
    link: Link | None = None
    dispatch_overhead_s: float = field(validator=_SECONDS)
    small_m_rows: int = field(default=0, validator=_between(0, 2**16, integer=True))
    small_m_rate_divisor: int = field(default=1, validator=_between(1, 1024, integer=True))
    sfpu_flops_per_s_per_core: float | None = field(default=None, validator=_OPTIONAL_RATE)
    eltwise_add_flops_per_s_per_core: float | None = field(default=None, validator=_OPTIONAL_RATE)
    eltwise_mul_flops_per_s_per_core: float | None = field(default=None, validator=_OPTIONAL_RATE)
    noc_bandwidth_bytes_per_s_per_core: float | None = field(
        default=None, validator=_OPTIONAL_BANDWIDTH
    )
    """What one core moves to and from other cores' L1 over the on-chip network (None: the
    reference has no figure); a chip's total is ``cores *`` this."""
    calibration: str | None = field(default=None, validator=_optional_name)
    """The chip family's measured microbenchmarks (``targets/data/calibration/NAME.toml``), which
    the time model is fitted to; None: the time model's simple rules (GPUs, idealised targets)."""
    fit: Fitted | None = None
    """What ``irperf calibrate`` fitted to a profile (``targets/fitted.py``): it replaces what
    ``calibration`` would give for the formats, op classes and collectives it covers."""
    sources: tuple[str, ...]
    origin: str = field(default="", eq=False, repr=False)
    """The file the target was read from (set by the loader, never by the file), for messages."""

    def __attrs_post_init__(self) -> None:
        where = f"target {show(self.name)}"
        if self.mesh[0] * self.mesh[1] != self.chips:
            raise TargetError(f"{where}: mesh {self.mesh} does not hold {self.chips} chips")
        if self.l1_usable_bytes_per_core > self.l1_bytes_per_core:
            raise TargetError(f"{where}: l1_usable_bytes_per_core exceeds l1_bytes_per_core")
        if not self.compute:
            raise TargetError(f"{where}: compute lists no rates")
        keys = [(c.dtype, c.fidelity) for c in self.compute]
        for key in keys:
            if keys.count(key) > 1:
                raise TargetError(f"{where}: compute lists {key[0]}/{key[1]} twice")
        self.rate()  # the defaults must name a rate
        if self.fit is not None and self.calibration is None:
            raise TargetError(
                f"{where}: a [fit] table needs a calibration, which gives what the profile did "
                f"not measure"
            )
        for k in self.fit.kernels if self.fit is not None else ():
            self.rate(k.dtype, k.fidelity)  # a fitted kernel must have a rate to be a fraction of
        paired: dict[str, str] = {}
        for dt, fi in self.fidelity_by_dtype:
            if dt not in DTYPES or fi not in FIDELITIES:
                raise TargetError(f"{where}: fidelity_by_dtype has an unknown pair {dt}/{fi}")
            if dt in paired:
                raise TargetError(
                    f"{where}: fidelity_by_dtype pairs {dt} twice ({paired[dt]} and {fi})"
                )
            paired[dt] = fi
            if fi not in {c.fidelity for c in self.compute}:
                raise TargetError(
                    f"{where}: fidelity_by_dtype pairs {dt} with {fi}, a fidelity no compute "
                    f"rate lists"
                )
            self.rate(dt, fi)  # and so must every pairing

    @property
    def label(self) -> str:
        """``target 'n300'``, and the file it came from if a user's: messages after loading."""
        shipped = not self.origin or self.origin.startswith("targets/data/")
        return f"target {show(self.name)}" + ("" if shipped else f" (from {self.origin})")

    @property
    def cores(self) -> int:
        """Compute cores of one chip (its grid). A card's total is ``chips * cores``: every
        quantity a target states is per core or per chip, and totals are written out."""
        return self.grid[0] * self.grid[1]

    def rate(self, dtype: str | None = None, fidelity: str | None = None) -> ComputeRate:
        """The matrix rate for ``dtype`` at ``fidelity`` (None: the target's defaults).

        An exact match wins; then a fidelity-free rate for the dtype, then the ``any`` dtype.
        """
        for name, value in (("dtype", dtype), ("fidelity", fidelity)):
            if value is not None and not isinstance(value, str):
                raise TargetError(f"{self.label}: {name} must be a name, got {show(value)}")
        dt = self.default_dtype if dtype is None else dtype.lower()
        fi = self.fidelity_for(dt) if fidelity is None else fidelity.lower()
        by_key = {(c.dtype, c.fidelity): c for c in self.compute}
        for key in ((dt, fi), (dt, NO_FIDELITY), (ANY_DTYPE, fi), (ANY_DTYPE, NO_FIDELITY)):
            if key in by_key:
                return by_key[key]
        valid = ", ".join(f"{d}/{f}" for d, f in by_key)
        raise TargetError(
            f"{self.label} has no compute rate for {show(dt)[1:-1]}/{show(fi)[1:-1]}; "
            f"valid: {valid}"
        )

    def fidelity_for(self, dtype: str) -> str:
        """The fidelity ``dtype`` runs at by default on this target."""
        if not isinstance(dtype, str):
            raise TargetError(f"{self.label}: dtype must be a name, got {show(dtype)}")
        return dict(self.fidelity_by_dtype).get(dtype.lower(), self.default_fidelity)

    def peak_flops_per_s_per_chip(
        self, dtype: str | None = None, fidelity: str | None = None
    ) -> float:
        """Matrix-engine peak of one chip's cores."""
        return self.rate(dtype, fidelity).flops_per_s_per_core * self.cores

    def matmul_rate_divisor(self, rows: int) -> int:
        """How many times slower a matmul runs when its input has ``rows`` rows."""
        if not is_int(rows):
            raise TargetError(f"{self.label}: rows must be an integer, got {show(rows)}")
        return self.small_m_rate_divisor if rows < self.small_m_rows else 1
