"""Static layer shapes (stem, MBConv blocks, head) that the supernet, cost model, latency table and exporter build on."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ACTIVATIONS", "HeadSpec", "MBConvSpec", "NetSpec", "StageSpec", "StemSpec", "conv_out", "make_divisible"]

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
    act: str = "h_swish"


@dataclass(frozen=True)
class NetSpec:
    stem: StemSpec
    blocks: tuple[MBConvSpec, ...]
    head: HeadSpec
