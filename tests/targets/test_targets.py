"""Targets: figures from the hardware reference, the TOML loader and its errors."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import attrs
import pytest

from irperf.errors import TargetError
from targets import ComputeRate, Link, Target, list_targets, load_target, target_names

SHIPPED = ["a100", "h100", "h200", "n150", "n300", "n300-seed", "p150", "t3000"]


def shipped_text(name: str) -> str:
    return resources.files("targets").joinpath("data").joinpath(f"{name}.toml").read_text("utf-8")


def write(tmp_path: Path, text: str, name: str = "user.toml") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def edited(tmp_path: Path, old: str, new: str, base: str = "n150") -> str:
    text = shipped_text(base)
    assert old in text
    return write(tmp_path, text.replace(old, new, 1))


# -- figures ------------------------------------------------------------------------------------


def test_seed_reproduces_the_blog_post() -> None:
    seed = load_target("n300-seed")
    assert seed.kind == "idealised"
    assert seed.chips * seed.peak_flops_per_s_per_chip() == 466e12
    assert (
        seed.chips * seed.peak_flops_per_s_per_chip("bf16", "hifi4") == 466e12
    )  # one flat rate for any format
    assert seed.chips * seed.dram_bandwidth_bytes_per_s_per_chip == 576e9
    assert seed.rate().flops_per_s_per_core == 233e12 / 64
    assert seed.dispatch_overhead_s == 0


def test_n300_matrix_rates_follow_fidelity() -> None:
    n300 = load_target("n300")
    assert n300.chips * n300.cores == 2 * 8 * 8
    assert (
        n300.chips * n300.peak_flops_per_s_per_chip() == 1.024e12 * 64 * 2
    )  # bf16 HiFi4 by default
    assert n300.chips * n300.peak_flops_per_s_per_chip("bf16", "hifi4") == 1.024e12 * 64 * 2
    assert n300.chips * n300.peak_flops_per_s_per_chip("bfp8_b", "hifi2") == 2.048e12 * 64 * 2
    assert n300.chips * n300.peak_flops_per_s_per_chip("bfp4_b", "lofi") == 4.096e12 * 64 * 2
    assert n300.rate("bf16", "hifi3").flops_per_s_per_core == 1.366e12
    assert n300.chips * n300.dram_bandwidth_bytes_per_s_per_chip == 2 * 288e9
    assert n300.chips * n300.dram_bytes_per_chip == 2 * 12 * 10**9


def test_n300_link_and_dispatch() -> None:
    n300 = load_target("n300")
    assert n300.link == Link(bandwidth_bytes_per_s=12e9, latency_s=0.7e-6, count=1)
    assert n300.mesh == (1, 2)
    assert n300.dispatch_overhead_s == 6.5e-6


def test_n150_per_core_figures() -> None:
    n150 = load_target("n150")
    assert n150.chips * n150.peak_flops_per_s_per_chip("bfp8_b", "lofi") == 4.096e12 * 64
    assert n150.chips == 1
    assert n150.link is None
    assert n150.grid == (8, 8)
    assert n150.clock_hz == 1e9
    assert n150.l1_bytes_per_core == 1_499_136
    assert n150.l1_usable_bytes_per_core == 1364 * 1024
    assert n150.dram_channels_per_chip == 12
    assert n150.sfpu_flops_per_s_per_core == 0.064e12
    assert n150.eltwise_add_flops_per_s_per_core == 0.128e12
    assert n150.eltwise_mul_flops_per_s_per_core == 0.256e12


def test_small_m_runs_at_an_eighth() -> None:
    n150 = load_target("n150")
    assert n150.matmul_rate_divisor(1) == 8
    assert n150.matmul_rate_divisor(7) == 8
    assert n150.matmul_rate_divisor(8) == 1
    assert load_target("h100").matmul_rate_divisor(1) == 1


def test_t3000_is_four_n300s() -> None:
    t3000, n300 = load_target("t3000"), load_target("n300")
    assert t3000.chips == 8
    assert t3000.mesh == (2, 4)
    assert (
        t3000.chips * t3000.peak_flops_per_s_per_chip()
        == 4 * n300.chips * n300.peak_flops_per_s_per_chip()
    )
    assert t3000.chips * t3000.dram_bandwidth_bytes_per_s_per_chip == 8 * 288e9


def test_p150_scales_lofi_by_clock() -> None:
    p150 = load_target("p150")
    assert p150.chips * p150.cores == 13 * 10
    assert p150.chips * p150.peak_flops_per_s_per_chip("bfp4_b", "lofi") == pytest.approx(
        4.096e12 * 1.35 * 130
    )
    assert p150.chips * p150.peak_flops_per_s_per_chip("bf16", "hifi2") == pytest.approx(
        4.096e12 * 1.35 / 2 * 130
    )
    assert p150.chips * p150.peak_flops_per_s_per_chip() == pytest.approx(4.096e12 * 1.35 / 4 * 130)
    assert p150.chips * p150.dram_bandwidth_bytes_per_s_per_chip == 512e9
    assert p150.chips * p150.dram_bytes_per_chip == 32 * 10**9


@pytest.mark.parametrize(
    ("name", "sms", "peak", "bandwidth", "hbm"),
    [
        ("a100", 108, 312e12, 2.04e12, 80e9),
        ("h100", 132, 989e12, 3.35e12, 80e9),
        ("h200", 132, 989e12, 4.8e12, 141e9),
    ],
)
def test_gpu_datasheet_figures(
    name: str, sms: int, peak: float, bandwidth: float, hbm: float
) -> None:
    gpu = load_target(name)
    assert gpu.kind == "gpu"
    assert gpu.chips * gpu.cores == sms
    assert gpu.chips * gpu.peak_flops_per_s_per_chip() == pytest.approx(peak)
    assert (
        gpu.chips * gpu.peak_flops_per_s_per_chip("bf16", "hifi4")
        == gpu.chips * gpu.peak_flops_per_s_per_chip()
    )  # no fidelity on GPUs
    assert gpu.chips * gpu.dram_bandwidth_bytes_per_s_per_chip == bandwidth
    assert gpu.chips * gpu.dram_bytes_per_chip == hbm


# -- shipped files ------------------------------------------------------------------------------


def test_target_names_are_the_shipped_files() -> None:
    assert target_names() == SHIPPED
    assert [t.name for t in list_targets()] == SHIPPED


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_target_round_trips_through_a_user_copy(name: str, tmp_path: Path) -> None:
    target = load_target(name)
    assert load_target(write(tmp_path, shipped_text(name), f"{name}.toml")) == target
    assert target.sources
    assert target.description


@pytest.mark.parametrize("name", SHIPPED)
def test_every_figure_has_a_source(name: str) -> None:
    target = load_target(name)
    text = " ".join(target.sources)
    for key in ("grid", "clock_hz", "l1_bytes_per_core", "dram_bytes_per_chip", "compute"):
        assert key in text
    assert "dram_channels_per_chip" in text
    assert "dram_bandwidth_bytes_per_s_per_chip" in text
    assert "dispatch_overhead_s" in text


# -- rate lookup --------------------------------------------------------------------------------


def test_rate_without_a_match_names_target_and_choices() -> None:
    with pytest.raises(TargetError, match=r"'n150'.*fp8/hifi4.*valid: .*bfp4_b/lofi"):
        load_target("n150").rate("fp8", "hifi4")
    # Every Wormhole format runs at every fidelity, at the fidelity's rate.
    assert load_target("n150").rate("bfp4_b", "hifi2").flops_per_s_per_core == 2.048e12


def test_direct_construction_validates() -> None:
    base = load_target("n150")
    with pytest.raises(TargetError, match="chips must be an integer from 1 to 1,024, got 0"):
        attrs.evolve(base, chips=0)
    with pytest.raises(TargetError, match="grid must be two integers from 1 to 1,024"):
        attrs.evolve(base, grid=(8, 0))
    with pytest.raises(TargetError, match="no compute rate for fp32/hifi4"):
        attrs.evolve(base, default_dtype="fp32")
    with pytest.raises(TargetError, match="fidelity 'hifi5' is not one of"):
        ComputeRate(dtype="bf16", fidelity="hifi5", flops_per_s_per_core=1.0)
    assert isinstance(base, Target)


# -- loader errors ------------------------------------------------------------------------------


def test_unknown_name_lists_valid_names() -> None:
    with pytest.raises(TargetError, match=r"unknown target 'n301'.*n150, n300, n300-seed"):
        load_target("n301")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(TargetError, match="target file not found"):
        load_target(str(tmp_path / "absent.toml"))


def test_malformed_toml_names_file_on_one_line(tmp_path: Path) -> None:
    path = write(tmp_path, 'name = "broken\nchips = 1\n')
    with pytest.raises(TargetError, match=r"user\.toml: malformed TOML: .*line 1") as info:
        load_target(path)
    assert "\n" not in str(info.value)


def test_missing_field(tmp_path: Path) -> None:
    path = edited(tmp_path, "clock_hz = 1e9\n", "")
    with pytest.raises(TargetError, match=r"user\.toml: missing field 'clock_hz'"):
        load_target(path)


def test_unknown_field(tmp_path: Path) -> None:
    path = edited(tmp_path, "clock_hz = 1e9\n", "clock_hz = 1e9\nclock_mhz = 1000\n")
    with pytest.raises(TargetError, match=r"unknown field 'clock_mhz'; did you mean 'clock_hz'\?"):
        load_target(path)


def test_ill_typed_field(tmp_path: Path) -> None:
    path = edited(tmp_path, "chips = 1\n", 'chips = "one"\n')
    with pytest.raises(TargetError, match=r"field 'chips' must be an integer, got str 'one'"):
        load_target(path)


def test_ill_typed_compute_entry(tmp_path: Path) -> None:
    path = edited(tmp_path, "flops_per_s_per_core = 1.024e12", "flops_per_s_per_core = true")
    with pytest.raises(TargetError, match=r"'compute\[0\]\.flops_per_s_per_core' must be a number"):
        load_target(path)


def test_negative_bandwidth(tmp_path: Path) -> None:
    path = edited(tmp_path, "= 288e9", "= -288e9")
    with pytest.raises(
        TargetError,
        match=r"user\.toml: .*dram_bandwidth_bytes_per_s_per_chip must be a number from 1e\+06 ",
    ):
        load_target(path)


def test_negative_link_bandwidth(tmp_path: Path) -> None:
    path = edited(tmp_path, "bandwidth_bytes_per_s = 12e9", "bandwidth_bytes_per_s = -1", "n300")
    with pytest.raises(
        TargetError, match=r"bandwidth_bytes_per_s must be a number from 1e\+06 to 1e\+16"
    ):
        load_target(path)


def test_rate_per_core_and_per_chip_is_ambiguous(tmp_path: Path) -> None:
    path = edited(
        tmp_path,
        "flops_per_s_per_core = 1.024e12",
        "flops_per_s_per_core = 1.024e12, flops_per_s_per_chip = 65.536e12",
    )
    with pytest.raises(TargetError, match=r"compute\[0\] needs exactly one of"):
        load_target(path)


def test_rate_per_chip_is_divided_over_the_grid(tmp_path: Path) -> None:
    path = edited(
        tmp_path,
        "flops_per_s_per_core = 1.024e12",
        "flops_per_s_per_chip = 65.536e12",
    )
    assert load_target(path).rate("bf16", "hifi4").flops_per_s_per_core == 65.536e12 / 64


def test_mesh_must_hold_the_chips(tmp_path: Path) -> None:
    path = edited(tmp_path, "mesh = [1, 2]", "mesh = [2, 2]", "n300")
    with pytest.raises(TargetError, match=r"mesh \(2, 2\) does not hold 2 chips"):
        load_target(path)


def test_wormhole_formats_pair_with_their_usual_fidelity() -> None:
    n150 = load_target("n150")
    assert n150.fidelity_for("bf16") == "hifi4"
    assert n150.fidelity_for("bfp8_b") == "hifi2"
    assert n150.fidelity_for("bfp4_b") == "lofi"
    assert n150.chips * n150.peak_flops_per_s_per_chip("bfp8_b") == 2.048e12 * 64
    assert n150.chips * n150.peak_flops_per_s_per_chip("bfp8_b", "hifi4") == 1.024e12 * 64
