"""The elastic supernet: every arch of a space runs inside it and can be copied out."""

from __future__ import annotations

import math
import os
from itertools import accumulate
from pathlib import Path
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint, set_checkpoint_early_stop

from ..errors import CheckpointError, SpaceError
from ..io import atomic_path
from ..space import Arch, SearchSpace, get_space
from .bn import bn_statistics_kept
from .ops import DynamicBatchNorm2d, DynamicConv2d, DynamicDWConv2d, DynamicMBConv, banded_order, permute_bn
from .static import Head, MBConv, Stem, SubNet

__all__ = ["Supernet", "init_weights"]

CHECKPOINT_FORMAT = "edgenas.supernet"
CHECKPOINT_VERSION = 1


@torch.no_grad()
def init_weights(module: nn.Module, generator: torch.Generator) -> None:
    """He fan-out convs and uniform linear layers, drawn from ``generator`` only.

    Unlike OFA, a depthwise filter's fan-out is ``k*k`` (one output per group), not ``C*k*k``:
    OFA's choice shrinks activations by ~sqrt(C) per block, so an untrained net in eval mode
    outputs ~1e-10 and makes export parity and latency checks meaningless.
    """
    for m in module.modules():
        if isinstance(m, nn.Conv2d | DynamicConv2d | DynamicDWConv2d):
            w = m.weight
            depthwise = isinstance(m, DynamicDWConv2d) or (isinstance(m, nn.Conv2d) and m.groups > 1)
            fan_out = (1 if depthwise else w.shape[0]) * w.shape[2] * w.shape[3]
            w.normal_(0.0, math.sqrt(2.0 / fan_out), generator=generator)
            if getattr(m, "bias", None) is not None:
                m.bias.zero_()
        elif isinstance(m, nn.BatchNorm2d):
            m.reset_parameters()
        elif isinstance(m, nn.Linear):
            bound = 1.0 / math.sqrt(m.in_features)
            m.weight.uniform_(-bound, bound, generator=generator)
            m.bias.zero_()


class Supernet(nn.Module):
    """OFA-style MobileNetV3 supernet with elastic kernel size, expand ratio, depth and resolution
    (and per-stage activation, squeeze-excite and width in spaces that make them elastic).

    ``activate(arch)`` selects the subnet that ``forward`` runs; ``extract(arch)`` returns it as a
    static :class:`SubNet` with copied weights and BN statistics.
    """

    def __init__(self, space: str | SearchSpace, num_classes: int | None = None, seed: int = 0):
        super().__init__()
        self.space = get_space(space)
        self.num_classes = num_classes or self.space.num_classes
        sp, r = self.space, max(self.space.resolutions)
        self.stem = Stem(sp.stem_spec(r))
        self.first_block = MBConv(sp.first_block_spec(r))
        blocks = []
        for slot in range(sp.n_layers):
            in_ch, out_ch, stride, stage = sp.slot_io(slot)
            blocks.append(DynamicMBConv(in_ch, out_ch, stride, stage.act, stage.se or True in sp.se_choices, sp.ks_choices, sp.e_choices,
                                        sp.se_reduction, sp.divisor, sp.act_choices))
        self.blocks = nn.ModuleList(blocks)
        ends = list(accumulate((b.code_size for b in blocks), initial=0))
        self._codes = [slice(a, b) for a, b in zip(ends, ends[1:])]  # each block's part of the arch code
        self.register_buffer("arch_code", torch.zeros(ends[-1], dtype=torch.bool), persistent=False)
        self._static = False
        self.head = ElasticHead(sp.head_spec(r, self.num_classes))
        self.reset_parameters(seed)
        self.arch = self.activate(sp.max_arch())
        self.grad_checkpointing = False

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Keep only each elastic block's input for backward and recompute the rest (timm's switch):
        training activation memory drops to about a block's worth, for one more forward per block."""
        self.grad_checkpointing = enable

    def set_static_shapes(self, enable: bool = True) -> None:
        """Run every subnet at the largest layer shapes (zero-padded kernels, inactive channels zeroed):
        the same outputs, gradients and BN statistics, and layer shapes that never change, so a GPU
        sets each up once instead of once per subnet (``ops`` module docstring).  Costs a small
        subnet the largest one's arithmetic: for launch-bound GPU steps, not for a CPU.

        The active arch then reaches the blocks as a tensor (``arch_code``), so under torch.compile one
        graph serves every subnet of a resolution: the slots a subnet skips run too, their output
        discarded (eagerly they are skipped).  A zero-selected kernel or skipped slot gets zero
        gradients where sliced execution leaves none; :meth:`idle_parameters` names them, and training
        clears them, so the optimizer steps as it would sliced."""
        self._static = enable
        if enable:
            self._encode()

    @property
    def static_shapes(self) -> bool:
        return self._static

    def _encode(self) -> None:
        active = set(self._slots)
        bits = [bit for slot, block in enumerate(self.blocks) for bit in cast(DynamicMBConv, block).encode(slot in active)]
        code = torch.tensor(bits, dtype=torch.bool)
        if self.arch_code.is_cuda:  # pinned: the copy queues behind the running steps instead of waiting for them
            code = code.pin_memory()
        self.arch_code.copy_(code, non_blocking=True)

    def idle_parameters(self, archs: list[Arch]) -> list[nn.Parameter]:
        """The parameters none of ``archs`` uses (sliced execution leaves them no gradient, so the
        optimizer skips them: no weight decay, no momentum): the blocks of slots none runs, their SE
        where none turns it on, each kernel transformation none needs."""
        idle: list[nn.Parameter] = []
        runs = [(a, set(self.space.active_slots(a))) for a in archs]
        for slot, block in enumerate(self.blocks):
            b = cast(DynamicMBConv, block)
            users = [a for a, slots in runs if slot in slots]
            if not users:
                idle += b.parameters()
                continue
            if b.se is not None and not any(self.space.slot_style(a, slot)[1] for a in users):
                idle += b.se.parameters()
            smallest = min(a.ks[slot] for a in users)
            idle += [t for name, t in b.dw.transforms.items() if int(name.split("to")[1]) < smallest]
        return idle

    def reset_parameters(self, seed: int) -> None:
        init_weights(self, torch.Generator().manual_seed(seed))

    def activate(self, arch: Arch | dict) -> Arch:
        arch = self.space.arch(arch)
        for slot, block in enumerate(self.blocks):
            in_ch, out_ch = self.space.slot_io(slot, self.space.slot_width(arch, slot))[:2]
            block.activate(arch.ks[slot], arch.e[slot], *self.space.slot_style(arch, slot), out_ch=out_ch, in_ch=in_ch)
        self.arch = arch
        self._slots = self.space.active_slots(arch)
        if self._static:
            self._encode()
        return arch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.first_block(self.stem(x))
        # compiled with static shapes, every slot runs (a skipped one's code keeps its output out)
        slots = range(len(self.blocks)) if self._static and torch.compiler.is_compiling() else self._slots
        codes = [self.arch_code[self._codes[s]] if self._static else None for s in slots]
        if self.grad_checkpointing and torch.is_grad_enabled():
            with set_checkpoint_early_stop(False):  # the recomputation must run to its end (see _Recomputed)
                for slot, code in zip(slots, codes):
                    x = checkpoint(_Recomputed(self.blocks[slot]), x, code, use_reentrant=False)
        else:
            for slot, code in zip(slots, codes):
                x = self.blocks[slot](x, code)
        return self.head(x)

    @torch.no_grad()
    def extract(self, arch: Arch | dict | None = None) -> SubNet:
        """A standalone copy of ``arch`` (default: the active arch), in the supernet's mode."""
        arch = self.space.arch(arch) if arch is not None else self.arch
        net = SubNet(self.space.net_spec(arch, self.num_classes)).to(next(self.parameters()).device)
        net.stem.load_state_dict(self.stem.state_dict())
        net.blocks[0].load_state_dict(self.first_block.state_dict())
        for dst, slot in zip(net.blocks[1:], self.space.active_slots(arch)):
            self.blocks[slot].copy_to(dst)
        self.head.copy_to(net.head)
        return net.train(self.training)

    def sort_channels(self, keep_bands: int = 0) -> None:
        """Sort middle channels by importance so small expand ratios keep the best ones."""
        for block in self.blocks:
            block.sort_channels(keep_bands)

    @torch.no_grad()
    def sort_widths(self, keep_bands: int = 0) -> None:
        """Reorder each stage's output channels by importance so narrow widths keep the best ones.

        A stage's channels form one residual stream, so one order serves every block in it: their
        projections and BNs (rows), what reads the stage (the next blocks' and the next stage's or
        the head's input columns).  Importance is the summed |BN scale| the stage's blocks write
        into a channel.  The network computes the same function before and after (tested).  A
        stage whose first block adds its input at full width is left as it is (its order is tied
        to the previous stage's).  ``keep_bands`` as for :meth:`sort_channels`.
        """
        sp, D = self.space, self.space.max_depth
        for stage in range(sp.n_stages):
            blocks = [self.blocks[stage * D + i] for i in range(D)]
            if blocks[0].stride == 1 and blocks[0].in_ch == blocks[0].out_ch:
                continue
            importance = torch.stack([b.project_bn.weight.abs() for b in blocks]).sum(0)
            bounds = [sp.stage_width(stage, w) for w in sorted(sp.widths, reverse=True)]
            order = banded_order(importance, bounds, keep_bands)
            for b in blocks:
                b.project.weight.copy_(b.project.weight[order])
                permute_bn(b.project_bn, order)
            readers = [b.expand_conv for b in blocks[1:]]
            readers += [self.blocks[(stage + 1) * D].expand_conv] if stage + 1 < sp.n_stages else [self.head.final_expand.conv]
            for conv in readers:
                conv.weight.copy_(conv.weight[:, order])

    def bn_modules(self) -> list[nn.BatchNorm2d]:
        return [m for m in self.modules() if isinstance(m, nn.BatchNorm2d | DynamicBatchNorm2d)]

    # ---- checkpoints -----------------------------------------------------------------------
    def checkpoint(self, **extra: Any) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "space": self.space.name,
            "space_def": self.space.to_dict(),
            "space_digest": self.space.digest(),
            "num_classes": self.num_classes,
            "state_dict": self.state_dict(),
            **extra,
        }

    def save(self, path: str | os.PathLike, **extra: Any) -> Path:
        """Write a checkpoint atomically; ``extra`` (optimizer state, epoch, ...) is stored beside."""
        with atomic_path(path) as tmp:
            torch.save(self.checkpoint(**extra), tmp)
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike, space: str | SearchSpace | None = None, map_location: str = "cpu") -> Supernet:
        return cls.from_checkpoint(read_checkpoint(path, space, map_location))

    @classmethod
    def from_checkpoint(cls, ckpt: dict[str, Any]) -> Supernet:
        """A supernet from a checkpoint already read by :func:`read_checkpoint` (no second read)."""
        space = space_from_checkpoint(ckpt)
        try:
            net = cls(space, int(ckpt["num_classes"]))
            net.load_state_dict(ckpt["state_dict"])
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:  # shapes or keys that do not fit the space
            detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            raise CheckpointError(f"checkpoint weights do not fit space '{ckpt.get('space')}': {detail}") from None
        return net


class ElasticHead(Head):
    """The head over the first channels of a narrower last stage (the final expand conv's first inputs)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv = self.final_expand.conv
        if x.size(1) == conv.in_channels:
            return super().forward(x)
        return self.classify(self.final_expand.act(self.final_expand.bn(F.conv2d(x, conv.weight[:, : x.size(1)].contiguous()))))

    @torch.no_grad()
    def copy_to(self, dst: Head) -> None:
        state = self.state_dict()
        key = "final_expand.conv.weight"
        state[key] = state[key][:, : dst.final_expand.conv.in_channels]
        dst.load_state_dict(state)


class _Recomputed:
    """A block whose second run (the recomputation in backward) leaves batch-norm running
    statistics as the first run left them: updated once per step, as without checkpointing."""

    def __init__(self, block: nn.Module):
        self.block, self.runs = block, 0

    def __call__(self, x: torch.Tensor, code: torch.Tensor | None) -> torch.Tensor:
        self.runs += 1
        if self.runs == 1:
            return self.block(x, code)
        with bn_statistics_kept(self.block):
            return self.block(x, code)


def read_checkpoint(path: str | os.PathLike, space: str | SearchSpace | None = None, map_location: str = "cpu") -> dict[str, Any]:
    """Load and check a supernet checkpoint (a path or a built-in name); refuse one made for another space."""
    from ..pretrained import resolve_checkpoint

    path = resolve_checkpoint(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many types for truncated/foreign files
        # torch's own message suggests weights_only=False: not advice to pass on for an untrusted file
        raise CheckpointError(f"cannot read checkpoint {path}: not a PyTorch checkpoint, or corrupt/truncated "
                              f"({type(exc).__name__})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not an edgenas supernet checkpoint")
    if ckpt.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(f"{path} has checkpoint version {ckpt.get('version')}; this edgenas reads {CHECKPOINT_VERSION}")
    if space is not None:
        space = get_space(space)
        if ckpt["space_digest"] != space.digest():
            what = "a different definition of" if ckpt["space"] == space.name else "space"
            raise CheckpointError(
                f"checkpoint {path} was made for {what} '{ckpt['space']}' (digest {ckpt['space_digest']}), "
                f"not for space '{space.name}' (digest {space.digest()})"
            )
    return ckpt


def checkpoint_space(path: str | os.PathLike) -> SearchSpace:
    """The space a checkpoint (a path or a built-in name) was trained in: what a command takes when --space is left out."""
    return space_from_checkpoint(read_checkpoint(path))


def space_from_checkpoint(ckpt: dict[str, Any]) -> SearchSpace:
    """The registered space of that name if identical, else the definition stored in the file."""
    if not isinstance(ckpt.get("space"), str) or "space_def" not in ckpt:
        raise CheckpointError("checkpoint lacks its space's name or definition")
    try:
        return get_space(ckpt["space"], ckpt["space_def"], ckpt.get("space_digest"))
    except SpaceError as exc:
        raise CheckpointError(f"checkpoint space: {exc}") from None
