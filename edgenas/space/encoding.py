"""The integer-vector form of an ``Arch`` that search works on: genes, bounds, encode/decode,
canonical vectors (inactive layers zeroed, so equal networks compare equal) and sampling.

A mixin of :class:`~edgenas.space.SearchSpace`; it reads only the space's choices.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np

from ..errors import ArchError
from .arch import Arch

__all__ = ["SAMPLINGS", "VectorEncoding"]

#: how ``sample_vectors`` draws archs: sizes spread over the space, or every gene uniform (mid-sized archs)
SAMPLINGS = ("stratified", "uniform")


class VectorEncoding:
    """Genes: kernel per layer, expand per layer, depth per stage, style per stage (only where the
    space makes activation or squeeze-excite elastic), width per stage (only where the space makes
    it elastic), resolution; each an index into its choices."""

    ks_choices: tuple[int, ...]
    e_choices: tuple[int | float, ...]
    d_choices: tuple[int, ...]
    act_choices: tuple[str, ...]
    se_choices: tuple[bool, ...]
    width_choices: tuple[float, ...]
    resolutions: tuple[int, ...]
    stages: tuple
    name: str

    def validate(self, arch: Arch) -> Arch:  # provided by SearchSpace
        raise NotImplementedError

    def stage_width(self, stage_idx: int, w: float | None = None) -> int:  # provided by SearchSpace
        raise NotImplementedError

    @property
    def n_stages(self) -> int:
        return len(self.stages)

    @property
    def max_depth(self) -> int:
        return max(self.d_choices)

    @property
    def n_layers(self) -> int:
        return self.n_stages * self.max_depth

    @property
    def styles(self) -> tuple[tuple[str | None, bool | None], ...]:
        """A stage's (activation, squeeze-excite) choices; None keeps the stage's own."""
        return tuple(itertools.product(self.act_choices or (None,), self.se_choices or (None,)))

    @property
    def n_style_genes(self) -> int:
        return self.n_stages if len(self.styles) > 1 else 0

    @property
    def widths(self) -> tuple[float, ...]:
        """A stage's width multipliers (1.0 alone where widths are fixed)."""
        return self.width_choices or (1.0,)

    @property
    def n_width_genes(self) -> int:
        return self.n_stages if len(self.widths) > 1 else 0

    @property
    def n_genes(self) -> int:
        return 2 * self.n_layers + self.n_stages + self.n_style_genes + self.n_width_genes + 1

    @property
    def n_choices(self) -> np.ndarray:
        """Number of choices per gene of the integer vector (pymoo bounds are 0..n-1)."""
        L, S = self.n_layers, self.n_stages
        return np.array(
            [len(self.ks_choices)] * L + [len(self.e_choices)] * L + [len(self.d_choices)] * S
            + [len(self.styles)] * self.n_style_genes + [len(self.widths)] * self.n_width_genes + [len(self.resolutions)],
            dtype=np.int64,
        )

    def n_archs(self, resolutions: Sequence[int] | None = None) -> int:
        """How many distinct networks (canonical archs) the space holds at ``resolutions``."""
        per_stage = sum((len(self.ks_choices) * len(self.e_choices)) ** d for d in self.d_choices) * len(self.styles)
        widths = [len({self.stage_width(s, w) for w in self.widths}) for s in range(self.n_stages)]
        return per_stage**self.n_stages * math.prod(widths) * len(resolutions or self.resolutions)

    def _width_canon(self) -> np.ndarray:
        """(n_stages, W): the largest width index giving a stage the same channels (0.75x and 1x of 24
        channels are both 24 after rounding to the divisor), so equal networks get equal vectors."""
        channels = np.array([[self.stage_width(s, w) for w in self.widths] for s in range(self.n_stages)])
        same = channels[:, :, None] == channels[:, None, ::-1]  # [s, j, W-1-k]
        return len(self.widths) - 1 - np.argmax(same, axis=2)

    def slot_styles(self, vectors: np.ndarray) -> np.ndarray:
        """(N, n_layers) style index of each layer slot's stage (all 0 in a space without style genes)."""
        X = np.asarray(vectors).reshape(-1, self.n_genes)
        if not self.n_style_genes:
            return np.zeros((len(X), self.n_layers), dtype=np.int64)
        start = 2 * self.n_layers + self.n_stages
        return np.repeat(X[:, start : start + self.n_stages], self.max_depth, axis=1).astype(np.int64)

    @property
    def _width_genes(self) -> slice:
        """Where the width genes sit in a vector (empty in a space without them)."""
        start = 2 * self.n_layers + self.n_stages + self.n_style_genes
        return slice(start, start + self.n_width_genes)

    def stage_width_indices(self, vectors: np.ndarray) -> np.ndarray:
        """(N, n_stages) width index of each stage (all the full width's in a space without width genes)."""
        X = np.asarray(vectors).reshape(-1, self.n_genes)
        if not self.n_width_genes:
            return np.zeros((len(X), self.n_stages), dtype=np.int64)
        return X[:, self._width_genes].astype(np.int64)

    def slot_width_pairs(self, vectors: np.ndarray) -> np.ndarray:
        """(N, n_layers) index ``w_in * W + w_out`` of each layer slot's (input, output) stage widths:
        a stage's first slot reads the previous stage's width (the first stage's, the fixed first
        block: the full width's index)."""
        W, D = len(self.widths), self.max_depth
        out_w = np.repeat(self.stage_width_indices(vectors), D, axis=1)
        in_w = out_w.copy()
        in_w[:, D::D] = out_w[:, D - 1 :: D][:, :-1]  # first slot of stage s reads stage s-1's width
        in_w[:, 0] = W - 1
        return in_w * W + out_w

    def slot_width_choices(self, slot: int) -> list[tuple[int, int]]:
        """The (input, output) width index pairs that slot ``slot`` can take."""
        W = len(self.widths)
        stage_idx, i = divmod(slot, self.max_depth)
        if i:
            return [(w, w) for w in range(W)]
        return [(wi, wo) for wi in (range(W) if stage_idx else [W - 1]) for wo in range(W)]

    def width_pair(self, pair: tuple[int, int]) -> tuple[float | None, float | None]:
        """``SearchSpace.block_spec``'s ``width`` for an index pair of :meth:`slot_width_choices`."""
        if not self.width_choices:
            return None, None
        return self.widths[pair[0]], self.widths[pair[1]]

    def _style_index(self, arch: Arch, stage: int) -> int:
        return self.styles.index((arch.act[stage] if self.act_choices else None, arch.se[stage] if self.se_choices else None))

    def sample_vectors(self, rng: np.random.Generator, n: int, stratified: bool = False,
                       resolution_idx: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """``n`` random archs as canonical integer vectors (resolutions from ``resolution_idx`` only, if given).

        Uniform genes make mid-sized archs: cifar-mbv3's 5-95% of MACs span 41-99 M of the space's
        20-180 M.  With ``stratified`` each arch draws a size level p ~ U(0, 1) and each gene the
        index Binomial(choices - 1, p) (every choice list is ordered smallest first), so sizes cover
        the space from its smallest to its largest arch (cifar-mbv3: 22-168 M).  Each gene is still
        uniform on its own (a binomial with a uniform p is uniform over 0..k); only the genes of one
        arch now move together."""
        if stratified:
            level = rng.random((n, 1))
            X = rng.binomial(self.n_choices - 1, level)
            if resolution_idx is not None:  # the same level among the allowed resolutions
                X[:, -1] = np.asarray(resolution_idx)[rng.binomial(len(resolution_idx) - 1, level[:, 0])]
        else:
            X = rng.integers(0, self.n_choices, size=(n, self.n_genes))
            if resolution_idx is not None:
                X[:, -1] = rng.choice(np.asarray(resolution_idx), size=n)
        return self.canonical_vectors(X)

    def sample(self, rng: np.random.Generator) -> Arch:
        return self.decode(self.sample_vectors(rng, 1)[0])

    def encode(self, arch: Arch) -> np.ndarray:
        arch = self.validate(arch)
        idx = (
            [self.ks_choices.index(k) for k in arch.ks]
            + [self.e_choices.index(e) for e in arch.e]
            + [self.d_choices.index(d) for d in arch.d]
            + [self._style_index(arch, s) for s in range(self.n_style_genes)]
            + [self.widths.index(w) for w in arch.w]
            + [self.resolutions.index(arch.r)]
        )
        return np.asarray(idx, dtype=np.int64)

    def decode(self, vector: Sequence[int] | np.ndarray) -> Arch:
        v = np.asarray(vector)
        if v.shape != (self.n_genes,):
            raise ArchError(f"arch vector has shape {v.shape}; space '{self.name}' needs ({self.n_genes},)")
        if not np.issubdtype(v.dtype, np.integer):
            if not np.all(np.equal(np.mod(v, 1), 0)):
                raise ArchError("arch vector must hold integers")
            v = v.astype(np.int64)
        bad = np.flatnonzero((v < 0) | (v >= self.n_choices))
        if bad.size:
            i = int(bad[0])
            raise ArchError(f"arch vector gene {i} = {int(v[i])} is outside 0..{int(self.n_choices[i]) - 1}")
        L, S = self.n_layers, self.n_stages
        return Arch(
            ks=tuple(self.ks_choices[i] for i in v[:L]),
            e=tuple(self.e_choices[i] for i in v[L : 2 * L]),
            d=tuple(self.d_choices[i] for i in v[2 * L : 2 * L + S]),
            r=self.resolutions[int(v[-1])],
            **self.style_fields(v[2 * L + S : 2 * L + S + self.n_style_genes]),
            w=tuple(self.widths[int(i)] for i in v[self._width_genes]),
        )

    def style_fields(self, indices: Sequence[int] | np.ndarray) -> dict[str, tuple]:
        """``Arch``'s ``act`` and ``se`` for one style index per stage (empty where not elastic)."""
        styles = [self.styles[int(i)] for i in indices]
        return {"act": tuple(str(a) for a, _ in styles) if self.act_choices else (),
                "se": tuple(bool(b) for _, b in styles) if self.se_choices else ()}

    def active_mask(self, vectors: np.ndarray) -> np.ndarray:
        """(N, n_layers) booleans: which layer slots the depths of each vector switch on."""
        L, S = self.n_layers, self.n_stages
        depth = np.asarray(self.d_choices)[vectors[:, 2 * L : 2 * L + S]]  # (N, S)
        slot = np.tile(np.arange(self.max_depth), S)  # (L,)
        return slot[None, :] < np.repeat(depth, self.max_depth, axis=1)

    def canonical_vectors(self, vectors: np.ndarray) -> np.ndarray:
        """Set the genes of inactive layers to choice 0, so equal networks have equal vectors."""
        L = self.n_layers
        out = np.array(vectors, dtype=np.int64, copy=True)
        inactive = ~self.active_mask(out)
        out[:, :L][inactive] = 0
        out[:, L : 2 * L][inactive] = 0
        if self.n_width_genes:
            genes = self._width_genes
            out[:, genes] = self._width_canon()[np.arange(self.n_stages)[None, :], out[:, genes]]
        return out

    def canonical(self, arch: Arch) -> Arch:
        return self.decode(self.canonical_vectors(self.encode(arch)[None])[0])
