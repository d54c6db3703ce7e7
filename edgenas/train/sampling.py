"""Sandwich-rule subnet sampling, seeded by the step so every DDP rank draws the same subnets."""

from __future__ import annotations

import numpy as np

from ..space import Arch, SearchSpace
from .config import Phase

__all__ = ["sandwich", "smallest", "step_rng"]


def step_rng(seed: int, step: int) -> np.random.Generator:
    return np.random.default_rng([seed, step])


def _pick(rng: np.random.Generator, choices: tuple, n: int) -> tuple:
    return tuple(choices[i] for i in rng.integers(0, len(choices), size=n))


def smallest(space: SearchSpace, phase: Phase, r: int) -> Arch:
    """The smallest subnet ``phase`` trains: its smallest kernel, expand ratio, depth, style and width everywhere."""
    c = phase.choices(space)
    S = space.n_stages
    return Arch((min(c["ks"]),) * space.n_layers, (min(c["e"]),) * space.n_layers, (min(c["d"]),) * S, r,
                **space.style_fields((min(c["style"]),) * S if space.n_style_genes else ()),
                w=(min(c["w"]),) * S if space.n_width_genes else ())


def sandwich(space: SearchSpace, phase: Phase, rng: np.random.Generator, n_random: int, r: int) -> list[Arch]:
    """[largest, smallest, n_random random] archs of ``phase``'s choices at resolution ``r``, no duplicates.

    The largest is always the space's max arch (the in-place distillation teacher); the
    smallest uses the phase's smallest allowed choices; random ones draw each gene uniformly.
    """
    c = phase.choices(space)
    L, S = space.n_layers, space.n_stages
    archs = [space.max_arch(r), smallest(space, phase, r)]
    for _ in range(n_random):
        ks, e, d = _pick(rng, c["ks"], L), _pick(rng, c["e"], L), _pick(rng, c["d"], S)
        archs.append(Arch(ks, e, d, r, **space.style_fields(_pick(rng, c["style"], S) if space.n_style_genes else ()),
                          w=_pick(rng, c["w"], S) if space.n_width_genes else ()))
    unique, seen = [], set()
    for a in archs:
        key = space.canonical(a)
        if key not in seen:
            seen.add(key)
            unique.append(a)
    return unique
