"""Static modules: what :meth:`Supernet.extract` returns and what gets exported to ONNX.

Each module is built from the shapes in :mod:`edgenas.space` (``NetSpec``), so a subnet can be
constructed without any supernet (for latency profiling before training, say).
"""

from __future__ import annotations

import torch
from torch import nn

from ..space import HeadSpec, MBConvSpec, NetSpec, StemSpec

__all__ = ["ConvBNAct", "MBConv", "SqueezeExcite", "SubNet", "build_act"]


def build_act(name: str | None) -> nn.Module:
    if name is None:
        return nn.Identity()
    if name == "relu":
        return nn.ReLU()
    if name == "h_swish":
        return nn.Hardswish()
    raise ValueError(f"unknown activation '{name}'")


class ConvBNAct(nn.Sequential):
    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1, groups: int = 1, act: str | None = None):
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, stride, kernel // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(out_ch)
        self.act = build_act(act)


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, mid: int):
        super().__init__()
        self.reduce = nn.Conv2d(channels, mid, 1, bias=True)
        self.relu = nn.ReLU()
        self.expand = nn.Conv2d(mid, channels, 1, bias=True)
        self.gate = nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.mean((2, 3), keepdim=True)
        return x * self.gate(self.expand(self.relu(self.reduce(y))))


class MBConv(nn.Module):
    """Inverted bottleneck: [1x1 expand] -> kxk depthwise -> [SE] -> 1x1 project, + identity."""

    def __init__(self, spec: MBConvSpec):
        super().__init__()
        self.spec = spec
        self.expand_conv = ConvBNAct(spec.in_ch, spec.mid_ch, 1, act=spec.act) if spec.expand else None
        self.dw = ConvBNAct(spec.mid_ch, spec.mid_ch, spec.kernel, spec.stride, groups=spec.mid_ch, act=spec.act)
        self.se = SqueezeExcite(spec.mid_ch, spec.se_ch) if spec.se else None
        self.project = ConvBNAct(spec.mid_ch, spec.out_ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.expand_conv(x) if self.expand_conv is not None else x
        h = self.dw(h)
        if self.se is not None:
            h = self.se(h)
        h = self.project(h)
        return h + x if self.spec.residual else h


class Stem(ConvBNAct):
    def __init__(self, spec: StemSpec):
        super().__init__(spec.in_ch, spec.out_ch, spec.kernel, spec.stride, act=spec.act)


class Head(nn.Module):
    """1x1 expand (BN) -> global average pool -> 1x1 feature mix (no BN) -> dropout -> linear."""

    def __init__(self, spec: HeadSpec):
        super().__init__()
        self.final_expand = ConvBNAct(spec.in_ch, spec.expand_ch, 1, act=spec.act)
        self.feature_mix = nn.Sequential()
        self.feature_mix.conv = nn.Conv2d(spec.expand_ch, spec.feature_ch, 1, bias=False)
        self.feature_mix.act = build_act(spec.act)
        self.dropout = nn.Dropout(spec.dropout) if spec.dropout > 0 else nn.Identity()
        self.classifier = nn.Linear(spec.feature_ch, spec.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(self.final_expand(x))

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """Everything after the final expand conv."""
        x = self.feature_mix(x.mean((2, 3), keepdim=True)).flatten(1)
        return self.classifier(self.dropout(x))


class SubNet(nn.Module):
    """A standalone static network for one arch of a space."""

    def __init__(self, spec: NetSpec):
        super().__init__()
        self.spec = spec
        self.stem = Stem(spec.stem)
        self.blocks = nn.Sequential(*(MBConv(b) for b in spec.blocks))
        self.head = Head(spec.head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)))
