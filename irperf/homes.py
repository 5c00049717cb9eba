"""Memory homes: where a tensor lives on a Tenstorrent chip, as TT-NN names them.

``dram_interleaved`` (pages round-robin over the 12 DRAM banks), ``dram_sharded`` (split over the
banks), ``l1_interleaved`` (over every core's L1), ``l1_height_sharded``, ``l1_width_sharded``
and ``l1_block_sharded`` (split over a core grid by rows, columns or both). The placement pass
chooses them (``passes/placement.py``); the spill and reshard ops name the home they move a tensor
to.
"""

from __future__ import annotations

import enum


class Home(enum.Enum):
    DRAM_INTERLEAVED = "dram_interleaved"
    DRAM_SHARDED = "dram_sharded"
    L1_INTERLEAVED = "l1_interleaved"
    L1_HEIGHT_SHARDED = "l1_height_sharded"
    L1_WIDTH_SHARDED = "l1_width_sharded"
    L1_BLOCK_SHARDED = "l1_block_sharded"

    @property
    def in_dram(self) -> bool:
        return self.value.startswith("dram")

    @property
    def sharded_in_l1(self) -> bool:
        """An L1 home split over a core grid (what a consumer must read in the same split)."""
        return self.value.startswith("l1_") and self.value.endswith("_sharded")


HOMES: tuple[str, ...] = tuple(h.value for h in Home)
"""Every home's name, in the order above (the ``--json`` and TOML spelling)."""
