"""The ``place`` pass: where every tensor lives on the chip (its memory home), per strategy.

Homes, as TT-NN names them (``wormhole.md``, placement vocabulary): ``dram_interleaved`` (pages
round-robin over the 12 DRAM banks), ``dram_sharded`` (split over the banks), ``l1_interleaved``
(over every core's L1), ``l1_height_sharded``, ``l1_width_sharded`` and ``l1_block_sharded``
(split over a core grid by rows, columns or both).

Per node the record holds its result's home and, one per operand, the home it reads that operand
from. Strategies:

- ``dram``: every tensor in DRAM, interleaved: the simplest baseline, and what the ``bytes``
  pass already assumes (every operand read from DRAM, every result written there).

The L1 strategies (``tt-metal``, ``l1-greedy``, ``time``), the L1 capacity check and the costs
that follow a placement come next (issue 9); a strategy this pass does not have is refused by
name, never approximated.
"""

from __future__ import annotations

import enum
from typing import ClassVar, Literal

from attrs import field, frozen

from irperf.graph import Graph
from irperf.pass_manager import AnalysisPass, one_of, register_pass


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


@frozen(kw_only=True)
class Placement:
    """Where a node's result lives, and where it reads each operand from."""

    output_home: Home
    input_homes: tuple[Home, ...]


Strategy = Literal["dram"]
STRATEGIES: tuple[str, ...] = ("dram",)


def place_dram(graph: Graph) -> dict[str, Placement]:
    """Every tensor in DRAM, interleaved over the banks."""
    home = Home.DRAM_INTERLEAVED
    return {
        n.name: Placement(output_home=home, input_homes=tuple(home for _ in n.operands))
        for n in graph
    }


@register_pass
@frozen(kw_only=True)
class PlacePass(AnalysisPass):
    """Memory homes of every tensor by a strategy (``dram`` today; see the module docstring)."""

    name: ClassVar[str] = "place"
    summary: ClassVar[str] = "memory home of every tensor (DRAM, L1, sharding) by a strategy"
    record_type: ClassVar[type] = Placement
    strategy: Strategy = field(default="dram", validator=one_of(*STRATEGIES))

    def analyze(self, graph: Graph) -> dict[str, Placement]:
        return place_dram(graph)
