"""Contractions: the matrix products an op runs, as (batch, M, K, N), and their 32x32 tiles.

Every matmul-like op says what it contracts through one method, ``Op.contractions(inputs,
out)``, which every pass that needs M, K and N reads (tiles and padded FLOPs, core grids, later
the time model):

- a linear layer (a rank-2 weight): M = every row of the activation (batch and sequence folded,
  as a device runs it), K = in features, N = out features;
- a batched matmul: one product per batch element;
- a convolution as a matmul (im2col): M = N x H' x W', K = C x kh x kw, N = out channels;
- attention: per (batch, head) ``q @ k^T`` (M = queries, K = head size, N = keys) and
  ``p @ v`` (M = queries, K = keys, N = head size).

Counts are one chip's (a split op's per-chip shapes). Padding rounds M, K and N up to the tile.
"""

from __future__ import annotations

from attrs import frozen

from irperf.dtypes import TILE

FMA_FLOPS = 2
"""A multiply-add counts as two FLOPs (PyTorch FlopCounterMode, XLA, the seed post)."""


def tiles_of(n: int) -> int:
    """32x32 tiles needed to hold ``n`` rows (or columns)."""
    return -(-n // TILE)


def padded(n: int) -> int:
    return tiles_of(n) * TILE


@frozen
class Contraction:
    """``batch`` independent ``[M, K] @ [K, N]`` products."""

    batch: int
    m: int
    k: int
    n: int

    @property
    def flops(self) -> int:
        """Logical FLOPs."""
        return FMA_FLOPS * self.batch * self.m * self.k * self.n

    @property
    def padded_flops(self) -> int:
        """FLOPs the device computes once M, K and N are padded to whole tiles."""
        return FMA_FLOPS * self.batch * padded(self.m) * padded(self.k) * padded(self.n)

    @property
    def padded_mkn(self) -> tuple[int, int, int]:
        return padded(self.m), padded(self.k), padded(self.n)

    @property
    def tiles(self) -> tuple[int, int, int]:
        """M, K and N in tiles."""
        return tiles_of(self.m), tiles_of(self.k), tiles_of(self.n)
