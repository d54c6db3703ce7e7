"""A search space: a frozen, registered description of an OFA-style MobileNetV3 family.

It says which ``Arch`` values are legal and turns one into the static layer shapes
(:class:`~edgenas.space.NetSpec`) that the supernet, the cost model, the latency table and the
exporter build on.  Nothing else parses architecture dicts.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import ArchError, SpaceError
from .arch import Arch
from .encoding import VectorEncoding
from .specs import ACTIVATIONS, HeadSpec, MBConvSpec, NetSpec, StageSpec, StemSpec, conv_out, make_divisible

__all__ = ["SearchSpace"]


@dataclass(frozen=True)
class SearchSpace(VectorEncoding):
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
    head_act: str = "h_swish"  # final expand and feature mix; "relu" for quantization-friendly spaces
    se_reduction: int = 4
    divisor: int = 8
    # elastic per-stage activation / squeeze-excite (empty: each stage keeps its own), ordered smallest first
    act_choices: tuple[str, ...] = ()
    se_choices: tuple[bool, ...] = ()
    # elastic per-stage width: multipliers of each stage's width, ascending, ending at 1.0 (empty: fixed widths)
    width_choices: tuple[float, ...] = ()
    description: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        for name in ("ks_choices", "e_choices", "d_choices", "resolutions"):
            values = getattr(self, name)
            if not values or list(values) != sorted(set(values)):
                raise SpaceError(f"space '{self.name}': {name} must be sorted, unique and non-empty")
        if any(k % 2 == 0 for k in self.ks_choices):
            raise SpaceError(f"space '{self.name}': kernel sizes must be odd")
        if self.act_choices and list(self.act_choices) != [a for a in ACTIVATIONS if a in self.act_choices]:
            raise SpaceError(f"space '{self.name}': act_choices must be distinct, in the order {list(ACTIVATIONS)}")
        if self.se_choices and list(self.se_choices) not in ([False], [True], [False, True]):
            raise SpaceError(f"space '{self.name}': se_choices must be [false, true] (or one of them)")
        w = self.width_choices
        if w and (list(w) != sorted(set(w)) or len(w) < 2 or w[-1] != 1.0 or w[0] <= 0):
            raise SpaceError(f"space '{self.name}': width_choices must be 2 or more ascending multipliers in (0, 1], the last 1.0")
        acts = {self.stem_act, self.first_block_act, self.head_act, *(s.act for s in self.stages), *self.act_choices}
        if not acts <= set(ACTIVATIONS):
            raise SpaceError(f"space '{self.name}': unknown activation(s) {sorted(acts - set(ACTIVATIONS))}")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("description")
        if data["head_act"] == "h_swish":  # added later: a default head keeps the digests tables and checkpoints hold
            data.pop("head_act")
        for key in ("act_choices", "se_choices", "width_choices"):  # likewise, where not elastic
            if not data[key]:
                data.pop(key)
        return data

    def definition(self) -> dict[str, Any]:
        """What a space file holds (and artefacts record): the fields ``to_dict`` hashes, and the description."""
        return {**self.to_dict(), "description": self.description}

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
        styled: tuple[tuple[str, tuple, tuple], ...] = (("act", arch.act, self.act_choices), ("se", arch.se, self.se_choices),
                                                        ("w", arch.w, self.width_choices))
        for key, values, choices in styled:
            if not choices and values:
                raise ArchError(f"arch has '{key}' but space '{self.name}' fixes it per stage (no '{key}' choices)")
            if choices and len(values) != S:
                raise ArchError(f"arch '{key}' has {len(values)} entries; space '{self.name}' needs {S} (one per stage)")
            for i, v in enumerate(values):
                if v not in choices:
                    raise ArchError(f"arch '{key}'[{i}] = {v!r} is not one of {list(choices)} in space '{self.name}'")
        return arch

    def arch(self, value: Arch | Mapping[str, Any]) -> Arch:
        """Validated ``Arch`` from an ``Arch`` or OFA dict (missing ``r``: the largest resolution)."""
        if not isinstance(value, Arch):
            value = Arch.from_dict(value, default_r=max(self.resolutions))
        return self.validate(value)

    # ---- special and random archs ----------------------------------------------------------
    def max_arch(self, r: int | None = None) -> Arch:
        L, S = self.n_layers, self.n_stages
        return self.validate(
            Arch((max(self.ks_choices),) * L, (max(self.e_choices),) * L, (self.max_depth,) * S, r or max(self.resolutions),
                 self.act_choices[-1:] * S, self.se_choices[-1:] * S, self.width_choices[-1:] * S)
        )

    def min_arch(self, r: int | None = None) -> Arch:
        L, S = self.n_layers, self.n_stages
        return self.validate(
            Arch((min(self.ks_choices),) * L, (min(self.e_choices),) * L, (min(self.d_choices),) * S, r or min(self.resolutions),
                 self.act_choices[:1] * S, self.se_choices[:1] * S, self.width_choices[:1] * S)
        )

    # ---- static shapes ---------------------------------------------------------------------
    def mid_channels(self, in_ch: int, expand: int | float) -> int:
        return make_divisible(round(in_ch * expand), self.divisor)

    def stage_width(self, stage_idx: int, w: float | None = None) -> int:
        """Output channels of stage ``stage_idx`` at width multiplier ``w`` (None or 1.0: its full width)."""
        base = self.stages[stage_idx].width
        return base if w is None or w == 1.0 else make_divisible(base * w, self.divisor)

    def slot_io(self, slot: int, width: tuple[float | None, float | None] = (None, None)) -> tuple[int, int, int, StageSpec]:
        """(in_ch, out_ch, stride, stage) of layer slot ``slot`` at (input, output) width multipliers
        ``width``; fixed whatever the depths.  The first stage's first slot reads the fixed first block."""
        stage_idx, i = divmod(slot, self.max_depth)
        stage = self.stages[stage_idx]
        w_in, w_out = width
        out_ch = self.stage_width(stage_idx, w_out)
        if i:
            in_ch = out_ch
        else:
            in_ch = self.stage_width(stage_idx - 1, w_in) if stage_idx else self.first_block_width
        return in_ch, out_ch, stage.stride if i == 0 else 1, stage

    def slot_in_res(self, slot: int, r: int) -> int:
        """Input resolution of layer slot ``slot`` at network resolution ``r``."""
        res = conv_out(conv_out(r, self.stem_stride), self.first_block_stride)
        stage_idx, i = divmod(slot, self.max_depth)
        for s in self.stages[:stage_idx]:
            res = conv_out(res, s.stride)
        return conv_out(res, self.stages[stage_idx].stride) if i else res

    def slot_style(self, arch: Arch, slot: int) -> tuple[str, bool]:
        """(activation, squeeze-excite) of layer slot ``slot`` in ``arch``: the arch's where elastic, else the stage's."""
        i = slot // self.max_depth
        stage = self.stages[i]
        return (arch.act[i] if self.act_choices else stage.act), (arch.se[i] if self.se_choices else stage.se)

    def slot_width(self, arch: Arch, slot: int) -> tuple[float | None, float | None]:
        """(input, output) width multipliers of layer slot ``slot`` in ``arch`` (None: the full width)."""
        if not self.width_choices:
            return None, None
        stage_idx, i = divmod(slot, self.max_depth)
        return (arch.w[stage_idx - 1] if i == 0 and stage_idx else arch.w[stage_idx]), arch.w[stage_idx]

    def block_spec(self, slot: int, kernel: int, expand: int | float, r: int, style: tuple[str | None, bool | None] = (None, None),
                   width: tuple[float | None, float | None] = (None, None)) -> MBConvSpec:
        """The static block of a slot; ``style`` (activation, SE) overrides the stage's own where not None,
        ``width`` gives the (input, output) width multipliers."""
        in_ch, out_ch, stride, stage = self.slot_io(slot, width)
        mid = self.mid_channels(in_ch, expand)
        act, se = (stage.act if style[0] is None else style[0]), (stage.se if style[1] is None else style[1])
        return MBConvSpec(
            in_ch=in_ch, out_ch=out_ch, mid_ch=mid, kernel=kernel, stride=stride, act=act, se=se,
            se_ch=make_divisible(mid // self.se_reduction, self.divisor), in_res=self.slot_in_res(slot, r),
        )

    def slot_blocks(self, slot: int, r: int) -> list[tuple[tuple[int, int, int, int], MBConvSpec]]:
        """Every block slot ``slot`` can be at resolution ``r``, with its (kernel, expand, style, width
        pair) indices: the layout the cost model and latency tables index by (width pair
        ``w_in * W + w_out``, see :meth:`slot_width_pairs`)."""
        W = len(self.widths)
        return [((ki, ei, ti, wi * W + wo), self.block_spec(slot, k, e, r, style, self.width_pair((wi, wo))))
                for ki, k in enumerate(self.ks_choices) for ei, e in enumerate(self.e_choices)
                for ti, style in enumerate(self.styles) for wi, wo in self.slot_width_choices(slot)]

    def stem_spec(self, r: int) -> StemSpec:
        return StemSpec(self.in_channels, self.stem_width, 3, self.stem_stride, self.stem_act, r)

    def first_block_spec(self, r: int) -> MBConvSpec:
        w_in, w_out = self.stem_width, self.first_block_width
        return MBConvSpec(
            in_ch=w_in, out_ch=w_out, mid_ch=w_in, kernel=3, stride=self.first_block_stride, act=self.first_block_act,
            se=False, se_ch=0, in_res=conv_out(r, self.stem_stride), expand=False,
        )

    def head_spec(self, r: int, num_classes: int | None = None, width: float | None = None) -> HeadSpec:
        """The head at resolution ``r`` after a last stage of width multiplier ``width``."""
        res = self.slot_in_res(self.n_layers - 1, r)
        return HeadSpec(
            in_ch=self.stage_width(self.n_stages - 1, width), expand_ch=self.final_expand_width, feature_ch=self.feature_width,
            num_classes=num_classes or self.num_classes, in_res=res, dropout=self.dropout, act=self.head_act,
        )

    def active_slots(self, arch: Arch) -> list[int]:
        return [s * self.max_depth + i for s, d in enumerate(arch.d) for i in range(d)]

    def net_spec(self, arch: Arch, num_classes: int | None = None) -> NetSpec:
        """The static network an arch stands for: what extraction builds and costs are counted on."""
        arch = self.validate(arch)
        blocks = [self.first_block_spec(arch.r)]
        blocks += [self.block_spec(p, arch.ks[p], arch.e[p], arch.r, self.slot_style(arch, p), self.slot_width(arch, p))
                   for p in self.active_slots(arch)]
        last = arch.w[-1] if self.width_choices else None
        return NetSpec(self.stem_spec(arch.r), tuple(blocks), self.head_spec(arch.r, num_classes, last))
