"""Analytic parameter and MAC counts for any arch, vectorized over many archs for search.

What is counted (and checked against fvcore on extracted subnets in the tests):

- ``params``: every trainable parameter of the extracted static subnet (conv and linear weights,
  biases, BN scale and shift), the number ``sum(p.numel())`` gives; BN running statistics are
  buffers, not parameters.
- ``macs``: multiply-accumulates of convolutions (SE 1x1 convs included) and of the classifier,
  at batch 1.  This is what fvcore reports for ``conv`` + ``linear`` (fvcore calls one MAC one
  "flop").  Not counted: BN (folded into convs at deployment), activations, pooling, the SE gate
  multiply and residual adds, all elementwise and small next to the convolutions.

A network's cost is its fixed part (stem, first block, head) plus one table lookup per active
layer slot, so a batch of N archs costs a few numpy gathers.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .space import Arch, HeadSpec, MBConvSpec, SearchSpace, StemSpec, get_space

__all__ = ["CostModel", "Stats", "block_cost", "cost_model", "stats"]


@dataclass(frozen=True)
class Stats:
    params: int
    macs: int
    resolution: int

    def to_dict(self) -> dict[str, int]:
        return {"params": self.params, "macs": self.macs, "resolution": self.resolution}


def block_cost(spec: MBConvSpec | StemSpec | HeadSpec) -> tuple[int, int]:
    """(params, MACs) of one static piece of a network."""
    if isinstance(spec, StemSpec):
        w = spec.in_ch * spec.out_ch * spec.kernel**2
        return w + 2 * spec.out_ch, w * spec.out_res**2
    if isinstance(spec, HeadSpec):
        expand = spec.in_ch * spec.expand_ch
        mix = spec.expand_ch * spec.feature_ch
        fc = spec.feature_ch * spec.num_classes
        params = expand + 2 * spec.expand_ch + mix + fc + spec.num_classes
        return params, expand * spec.in_res**2 + mix + fc
    s = spec
    params = macs = 0
    if s.expand:
        params += s.in_ch * s.mid_ch + 2 * s.mid_ch
        macs += s.in_ch * s.mid_ch * s.in_res**2
    params += s.mid_ch * s.kernel**2 + 2 * s.mid_ch
    macs += s.mid_ch * s.kernel**2 * s.out_res**2
    if s.se:
        params += 2 * s.mid_ch * s.se_ch + s.se_ch + s.mid_ch
        macs += 2 * s.mid_ch * s.se_ch
    params += s.mid_ch * s.out_ch + 2 * s.out_ch
    macs += s.mid_ch * s.out_ch * s.out_res**2
    return params, macs


class CostModel:
    """Lookup tables of per-slot costs for one space and head size."""

    def __init__(self, space: str | SearchSpace, num_classes: int | None = None):
        self.space = sp = get_space(space)
        self.num_classes = num_classes or sp.num_classes
        K, E, R, T, W = len(sp.ks_choices), len(sp.e_choices), len(sp.resolutions), len(sp.styles), len(sp.widths)
        self.fixed_params = np.zeros((W, R), dtype=np.int64)  # stem, first block and head (after a last stage of width w)
        self.fixed_macs = np.zeros((W, R), dtype=np.int64)
        for wi, w in enumerate(sp.widths):
            for ri, r in enumerate(sp.resolutions):
                for spec in (sp.stem_spec(r), sp.first_block_spec(r), sp.head_spec(r, self.num_classes, w)):
                    p, m = block_cost(spec)
                    self.fixed_params[wi, ri] += p
                    self.fixed_macs[wi, ri] += m
        # per slot, kernel, expand, style, (input, output) width pair (SearchSpace.slot_blocks), resolution
        self.slot_params = np.zeros((sp.n_layers, K, E, T, W * W), dtype=np.int64)
        self.slot_macs = np.zeros((sp.n_layers, K, E, T, W * W, R), dtype=np.int64)
        for slot in range(sp.n_layers):
            for ri, r in enumerate(sp.resolutions):
                for (ki, ei, ti, wi), spec in sp.slot_blocks(slot, r):
                    p, m = block_cost(spec)
                    self.slot_params[slot, ki, ei, ti, wi] = p
                    self.slot_macs[slot, ki, ei, ti, wi, ri] = m

    def batch(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(params, macs) for an (N, n_genes) array of arch vectors."""
        sp = self.space
        X = np.asarray(vectors, dtype=np.int64).reshape(-1, sp.n_genes)
        L = sp.n_layers
        ks, es, ts, ws, ri = X[:, :L], X[:, L : 2 * L], sp.slot_styles(X), sp.slot_width_pairs(X), X[:, -1]
        last = sp.stage_width_indices(X)[:, -1]
        active = sp.active_mask(X)
        slots = np.arange(L)[None, :]
        params = np.where(active, self.slot_params[slots, ks, es, ts, ws], 0).sum(1) + self.fixed_params[last, ri]
        macs = np.where(active, self.slot_macs[slots, ks, es, ts, ws, ri[:, None]], 0).sum(1) + self.fixed_macs[last, ri]
        return params, macs

    def stats(self, arch: Arch) -> Stats:
        params, macs = self.batch(self.space.encode(arch)[None])
        return Stats(int(params[0]), int(macs[0]), arch.r)


@lru_cache(maxsize=32)
def cost_model(space: str | SearchSpace, num_classes: int | None = None) -> CostModel:
    return CostModel(space, num_classes)


def stats(space: str | SearchSpace, arch: Arch, num_classes: int | None = None) -> Stats:
    """Parameters and MACs of ``arch`` (the numbers ``edgenas stats`` prints)."""
    sp = get_space(space)
    return cost_model(sp, num_classes or sp.num_classes).stats(arch)
