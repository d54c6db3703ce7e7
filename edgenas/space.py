"""Search spaces and the one architecture encoding every stage of edgenas shares.

An :class:`Arch` is a plain frozen value (OFA's ``{"ks", "e", "d", "r"}``); a :class:`SearchSpace`
says which values are legal, turns an ``Arch`` into integer vectors for search, and into the
static layer shapes (:class:`NetSpec`) that the supernet, the cost model, the latency table and
the exporter all build on.  Nothing else parses architecture dicts.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from .errors import ArchError, SpaceError

__all__ = [
    "Arch",
    "HeadSpec",
    "MBConvSpec",
    "NetSpec",
    "SearchSpace",
    "StageSpec",
    "StemSpec",
    "get_space",
    "list_spaces",
    "make_divisible",
    "register_space",
]

ACTIVATIONS = ("relu", "h_swish")


def make_divisible(v: float, divisor: int = 8) -> int:
    """Round a channel count to a multiple of ``divisor`` without losing more than 10%."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def conv_out(res: int, stride: int) -> int:
    """Spatial size after a 'same'-padded odd-kernel convolution."""
    return (res - 1) // stride + 1


def _number(value: Any) -> int | float:
    """Normalise 3.0 -> 3 so JSON round-trips and hashing do not depend on int/float."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (isinstance(value, float) and not math.isfinite(value)):
        raise TypeError(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


@dataclass(frozen=True)
class Arch:
    """One subnet: kernel size and expand ratio per elastic layer, depth per stage, resolution.

    ``ks`` and ``e`` hold an entry for every layer slot (``n_stages * max_depth``), as OFA does;
    entries beyond a stage's depth are inactive.  Use :meth:`SearchSpace.canonical` to compare
    archs as networks.
    """

    ks: tuple[int, ...]
    e: tuple[int | float, ...]
    d: tuple[int, ...]
    r: int

    def to_dict(self) -> dict[str, Any]:
        return {"ks": list(self.ks), "e": list(self.e), "d": list(self.d), "r": self.r}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], default_r: int | None = None) -> "Arch":
        """Parse OFA's dict form; checks types only (the space checks values)."""
        if not isinstance(data, Mapping):
            raise ArchError(f"arch must be a JSON object with keys ks, e, d, r; got {type(data).__name__}")
        unknown = sorted(set(data) - {"ks", "e", "d", "r"})
        if unknown:
            raise ArchError(f"arch has unknown key(s) {unknown}; expected ks, e, d, r")
        fields: dict[str, tuple] = {}
        for key in ("ks", "e", "d"):
            if key not in data:
                raise ArchError(f"arch is missing '{key}'")
            seq = data[key]
            if not isinstance(seq, (list, tuple)):
                raise ArchError(f"arch '{key}' must be a list of numbers, got {seq!r}")
            try:
                fields[key] = tuple(_number(v) for v in seq)
            except TypeError as exc:
                raise ArchError(f"arch '{key}' holds a non-number: {exc.args[0]!r}") from None
        r = data.get("r", default_r)
        if isinstance(r, (list, tuple)) and len(r) == 1:  # OFA search results write "r": [224]
            r = r[0]
        if r is None:
            raise ArchError("arch is missing 'r' (input resolution)")
        if isinstance(r, bool) or not isinstance(r, (int, float)) or not math.isfinite(r) or float(r) != int(r) or r <= 0:
            raise ArchError(f"arch 'r' must be an integer resolution, got {r!r}")
        for key in ("ks", "d"):
            if any(not float(v).is_integer() for v in fields[key]):
                raise ArchError(f"arch '{key}' must hold integers, got {list(fields[key])}")
        return cls(
            ks=tuple(int(v) for v in fields["ks"]),
            e=fields["e"],
            d=tuple(int(v) for v in fields["d"]),
            r=int(r),
        )


@dataclass(frozen=True)
class StageSpec:
    """One elastic stage: output width, stride of its first layer, activation, squeeze-excite."""

    width: int
    stride: int
    act: str
    se: bool


@dataclass(frozen=True)
class StemSpec:
    in_ch: int
    out_ch: int
    kernel: int
    stride: int
    act: str
    in_res: int

    @property
    def out_res(self) -> int:
        return conv_out(self.in_res, self.stride)


@dataclass(frozen=True)
class MBConvSpec:
    """A static MBConv block: the unit of latency measurement and of weight copying."""

    in_ch: int
    out_ch: int
    mid_ch: int
    kernel: int
    stride: int
    act: str
    se: bool
    se_ch: int
    in_res: int
    expand: bool = True  # False for the fixed first block (expand ratio 1)

    @property
    def residual(self) -> bool:
        return self.stride == 1 and self.in_ch == self.out_ch

    @property
    def out_res(self) -> int:
        return conv_out(self.in_res, self.stride)


@dataclass(frozen=True)
class HeadSpec:
    """Final 1x1 expand conv, global pool, 1x1 feature-mix conv (no BN), classifier."""

    in_ch: int
    expand_ch: int
    feature_ch: int
    num_classes: int
    in_res: int
    dropout: float


@dataclass(frozen=True)
class NetSpec:
    stem: StemSpec
    blocks: tuple[MBConvSpec, ...]
    head: HeadSpec


@dataclass(frozen=True)
class SearchSpace:
    """A frozen description of an OFA-style MobileNetV3 space (see the presets at the bottom)."""

    name: str
    stem_width: int
    stem_stride: int
    first_block_width: int
    first_block_stride: int
    first_block_act: str
    stages: tuple[StageSpec, ...]
    ks_choices: tuple[int, ...]
    e_choices: tuple[int | float, ...]
    d_choices: tuple[int, ...]
    resolutions: tuple[int, ...]
    final_expand_width: int
    feature_width: int
    num_classes: int
    dropout: float = 0.1
    in_channels: int = 3
    stem_act: str = "h_swish"
    se_reduction: int = 4
    divisor: int = 8
    description: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        for name in ("ks_choices", "e_choices", "d_choices", "resolutions"):
            values = getattr(self, name)
            if not values or list(values) != sorted(set(values)):
                raise SpaceError(f"space '{self.name}': {name} must be sorted, unique and non-empty")
        if any(k % 2 == 0 for k in self.ks_choices):
            raise SpaceError(f"space '{self.name}': kernel sizes must be odd")
        acts = {self.stem_act, self.first_block_act, *(s.act for s in self.stages)}
        if not acts <= set(ACTIVATIONS):
            raise SpaceError(f"space '{self.name}': unknown activation(s) {sorted(acts - set(ACTIVATIONS))}")

    # ---- shape of the encoding -------------------------------------------------------------
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
    def n_genes(self) -> int:
        return 2 * self.n_layers + self.n_stages + 1

    @property
    def n_choices(self) -> np.ndarray:
        """Number of choices per gene of the integer vector (pymoo bounds are 0..n-1)."""
        L, S = self.n_layers, self.n_stages
        return np.array(
            [len(self.ks_choices)] * L + [len(self.e_choices)] * L + [len(self.d_choices)] * S + [len(self.resolutions)],
            dtype=np.int64,
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("description")
        return data

    def digest(self) -> str:
        """Hash of the definition: checkpoints and latency tables record it to refuse a mismatch."""
        blob = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    # ---- validation ------------------------------------------------------------------------
    def validate(self, arch: Arch) -> Arch:
        """Return ``arch`` if it belongs to this space; otherwise raise naming field and value."""
        L, S = self.n_layers, self.n_stages
        for key, values, n in (("ks", arch.ks, L), ("e", arch.e, L), ("d", arch.d, S)):
            if len(values) != n:
                raise ArchError(f"arch '{key}' has {len(values)} entries; space '{self.name}' needs {n}")
        for key, values, choices in (("ks", arch.ks, self.ks_choices), ("e", arch.e, self.e_choices), ("d", arch.d, self.d_choices)):
            for i, v in enumerate(values):
                if v not in choices:
                    raise ArchError(f"arch '{key}'[{i}] = {v} is not one of {list(choices)} in space '{self.name}'")
        if arch.r not in self.resolutions:
            raise ArchError(f"arch resolution r = {arch.r} is not one of {list(self.resolutions)} in space '{self.name}'")
        return arch

    def arch(self, value: Arch | Mapping[str, Any]) -> Arch:
        """Validated ``Arch`` from an ``Arch`` or OFA dict (missing ``r``: the largest resolution)."""
        if not isinstance(value, Arch):
            value = Arch.from_dict(value, default_r=max(self.resolutions))
        return self.validate(value)

    def parse_arch(self, text: str) -> Arch:
        """Resolve the CLI's ``--arch``: inline JSON, ``@file.json``, ``max``, ``min``, ``random:SEED``."""
        text = text.strip()
        if text == "max":
            return self.max_arch()
        if text == "min":
            return self.min_arch()
        if text.startswith("random:"):
            seed = text.split(":", 1)[1]
            if not (seed.isascii() and seed.isdigit() and int(seed) < 2**63):
                raise ArchError(f"--arch random:SEED needs a non-negative integer seed, got {seed!r}")
            return self.sample(np.random.default_rng(int(seed)))
        if text.startswith("@"):
            path = Path(text[1:])
            try:
                text = path.read_text()
            except OSError as exc:
                raise ArchError(f"cannot read arch file {path}: {exc.strerror or exc}") from None
            except UnicodeDecodeError:
                raise ArchError(f"arch file {path} is not text (expected OFA JSON)") from None
            source = str(path)
        else:
            source = "--arch"
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ArchError(
                f"{source} is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); "
                "expected {\"ks\": [...], \"e\": [...], \"d\": [...], \"r\": R} or max, min, random:SEED, @file.json"
            ) from None
        if isinstance(data, Mapping) and "arch" in data and isinstance(data["arch"], Mapping):
            data = data["arch"]  # accept a front.json member or an `edgenas pick` result as well
        return self.arch(data)

    # ---- special and random archs ----------------------------------------------------------
    def max_arch(self, r: int | None = None) -> Arch:
        L = self.n_layers
        return self.validate(
            Arch((max(self.ks_choices),) * L, (max(self.e_choices),) * L, (self.max_depth,) * self.n_stages, r or max(self.resolutions))
        )

    def min_arch(self, r: int | None = None) -> Arch:
        L = self.n_layers
        return self.validate(
            Arch((min(self.ks_choices),) * L, (min(self.e_choices),) * L, (min(self.d_choices),) * self.n_stages, r or min(self.resolutions))
        )

    def n_archs(self, resolutions: Sequence[int] | None = None) -> int:
        """How many distinct networks (canonical archs) the space holds at ``resolutions``."""
        per_stage = sum((len(self.ks_choices) * len(self.e_choices)) ** d for d in self.d_choices)
        return per_stage**self.n_stages * len(resolutions or self.resolutions)

    def sample_vectors(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` uniformly random archs as canonical integer vectors."""
        return self.canonical_vectors(rng.integers(0, self.n_choices, size=(n, self.n_genes)))

    def sample(self, rng: np.random.Generator) -> Arch:
        return self.decode(self.sample_vectors(rng, 1)[0])

    # ---- integer encoding ------------------------------------------------------------------
    def encode(self, arch: Arch) -> np.ndarray:
        arch = self.validate(arch)
        idx = (
            [self.ks_choices.index(k) for k in arch.ks]
            + [self.e_choices.index(e) for e in arch.e]
            + [self.d_choices.index(d) for d in arch.d]
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
        )

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
        return out

    def canonical(self, arch: Arch) -> Arch:
        return self.decode(self.canonical_vectors(self.encode(arch)[None])[0])

    # ---- static shapes ---------------------------------------------------------------------
    def mid_channels(self, in_ch: int, expand: int | float) -> int:
        return make_divisible(round(in_ch * expand), self.divisor)

    def slot_io(self, slot: int) -> tuple[int, int, int, StageSpec]:
        """(in_ch, out_ch, stride, stage) of layer slot ``slot``; fixed whatever the depths."""
        stage_idx, i = divmod(slot, self.max_depth)
        stage = self.stages[stage_idx]
        in_ch = stage.width if i else (self.stages[stage_idx - 1].width if stage_idx else self.first_block_width)
        return in_ch, stage.width, stage.stride if i == 0 else 1, stage

    def slot_in_res(self, slot: int, r: int) -> int:
        """Input resolution of layer slot ``slot`` at network resolution ``r``."""
        res = conv_out(conv_out(r, self.stem_stride), self.first_block_stride)
        stage_idx, i = divmod(slot, self.max_depth)
        for s in self.stages[:stage_idx]:
            res = conv_out(res, s.stride)
        return conv_out(res, self.stages[stage_idx].stride) if i else res

    def block_spec(self, slot: int, kernel: int, expand: int | float, r: int) -> MBConvSpec:
        in_ch, out_ch, stride, stage = self.slot_io(slot)
        mid = self.mid_channels(in_ch, expand)
        return MBConvSpec(
            in_ch=in_ch, out_ch=out_ch, mid_ch=mid, kernel=kernel, stride=stride, act=stage.act, se=stage.se,
            se_ch=make_divisible(mid // self.se_reduction, self.divisor), in_res=self.slot_in_res(slot, r),
        )

    def stem_spec(self, r: int) -> StemSpec:
        return StemSpec(self.in_channels, self.stem_width, 3, self.stem_stride, self.stem_act, r)

    def first_block_spec(self, r: int) -> MBConvSpec:
        w_in, w_out = self.stem_width, self.first_block_width
        return MBConvSpec(
            in_ch=w_in, out_ch=w_out, mid_ch=w_in, kernel=3, stride=self.first_block_stride, act=self.first_block_act,
            se=False, se_ch=0, in_res=conv_out(r, self.stem_stride), expand=False,
        )

    def head_spec(self, r: int, num_classes: int | None = None) -> HeadSpec:
        res = self.slot_in_res(self.n_layers - 1, r)
        return HeadSpec(
            in_ch=self.stages[-1].width, expand_ch=self.final_expand_width, feature_ch=self.feature_width,
            num_classes=num_classes or self.num_classes, in_res=res, dropout=self.dropout,
        )

    def active_slots(self, arch: Arch) -> list[int]:
        return [s * self.max_depth + i for s, d in enumerate(arch.d) for i in range(d)]

    def net_spec(self, arch: Arch, num_classes: int | None = None) -> NetSpec:
        """The static network an arch stands for: what extraction builds and costs are counted on."""
        arch = self.validate(arch)
        blocks = [self.first_block_spec(arch.r)]
        blocks += [self.block_spec(p, arch.ks[p], arch.e[p], arch.r) for p in self.active_slots(arch)]
        return NetSpec(self.stem_spec(arch.r), tuple(blocks), self.head_spec(arch.r, num_classes))


# ---- registry --------------------------------------------------------------------------------
_SPACES: dict[str, SearchSpace] = {}


def register_space(space: SearchSpace) -> SearchSpace:
    if space.name in _SPACES and _SPACES[space.name] != space:
        raise SpaceError(f"a different space named '{space.name}' is already registered")
    _SPACES[space.name] = space
    return space


def list_spaces() -> list[str]:
    return sorted(_SPACES)


def get_space(name: str | SearchSpace) -> SearchSpace:
    if isinstance(name, SearchSpace):
        return name
    try:
        return _SPACES[name]
    except KeyError:
        raise SpaceError(f"unknown space '{name}'; registered spaces: {', '.join(list_spaces())}") from None


def _stages(widths: Iterable[int], strides: Iterable[int], acts: Iterable[str], ses: Iterable[bool]) -> tuple[StageSpec, ...]:
    return tuple(StageSpec(w, s, a, se) for w, s, a, se in zip(widths, strides, acts, ses))


_OFA_STAGES = dict(
    widths=(24, 40, 80, 112, 160),
    acts=("relu", "relu", "h_swish", "h_swish", "h_swish"),
    ses=(False, True, False, True, True),
)

OFA_MBV3 = register_space(
    SearchSpace(
        name="ofa-mbv3",
        stem_width=16, stem_stride=2,
        first_block_width=16, first_block_stride=1, first_block_act="relu",
        stages=_stages(strides=(2, 2, 2, 1, 2), **_OFA_STAGES),
        ks_choices=(3, 5, 7), e_choices=(3, 4, 6), d_choices=(2, 3, 4),
        resolutions=tuple(range(128, 225, 4)),
        final_expand_width=960, feature_width=1280, num_classes=1000,
        description="OFA's ofa_mbv3_d234_e346_k357_w1.0 MobileNetV3 space (ImageNet, 128..224).",
    )
)

CIFAR_MBV3 = register_space(
    SearchSpace(
        name="cifar-mbv3",
        stem_width=16, stem_stride=1,
        first_block_width=16, first_block_stride=1, first_block_act="relu",
        stages=_stages(strides=(1, 2, 2, 1, 2), **_OFA_STAGES),
        ks_choices=(3, 5, 7), e_choices=(3, 4, 6), d_choices=(2, 3, 4),
        resolutions=(24, 28, 32),
        final_expand_width=960, feature_width=1280, num_classes=10,
        description=(
            "ofa-mbv3 for 32x32 inputs: the stem and the first elastic stage keep stride 1, so the "
            "network downsamples 8x (32 -> 4x4 at the head, like 224 -> 7x7) instead of 32x."
        ),
    )
)

TINY = register_space(
    SearchSpace(
        name="tiny",
        stem_width=8, stem_stride=1,
        first_block_width=8, first_block_stride=1, first_block_act="relu",
        stages=_stages(widths=(16, 24, 32), strides=(2, 2, 2), acts=("relu", "h_swish", "h_swish"), ses=(False, True, True)),
        ks_choices=(3, 5), e_choices=(2, 3), d_choices=(1, 2),
        resolutions=(16, 20, 24),
        final_expand_width=64, feature_width=128, num_classes=10, dropout=0.0,
        description="A small space that trains and searches on a CPU in seconds (tests, quickstart).",
    )
)
