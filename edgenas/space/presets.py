"""The registered presets: ``ofa-mbv3`` (OFA's space exactly), ``cifar-mbv3`` (32x32 inputs), their
quantization-friendly ``-lite`` variants, ``tiny`` (tests, CPU), ``cifar-mbv3-mixed`` and
``tiny-mixed`` with activation and squeeze-excite elastic per stage, and ``cifar-mbv3-width`` and
``tiny-width`` with elastic width per stage."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from .registry import register_space
from .searchspace import SearchSpace
from .specs import StageSpec

__all__ = ["CIFAR_MBV3", "CIFAR_MBV3_LITE", "CIFAR_MBV3_MIXED", "CIFAR_MBV3_WIDTH", "OFA_MBV3", "OFA_MBV3_LITE", "TINY", "TINY_MIXED",
           "TINY_WIDTH", "elastic_width", "lite", "mixed"]


def _stages(widths: Iterable[int], strides: Iterable[int], acts: Iterable[str], ses: Iterable[bool]) -> tuple[StageSpec, ...]:
    return tuple(StageSpec(w, s, a, se) for w, s, a, se in zip(widths, strides, acts, ses))


_OFA_STAGES: dict[str, Any] = dict(
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
    ),
    builtin=True,
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
    ),
    builtin=True,
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
    ),
    builtin=True,
)


def lite(space: SearchSpace, name: str) -> SearchSpace:
    """The EfficientNet-Lite recipe: ReLU everywhere, no squeeze-excite, kernels up to 5x5.

    In int8, h-swish costs two kernels after each convolution (QLinearAdd + QLinearMul) and SE three
    more (pooling, gate, product); ReLU costs none (the convolution's output range clips it), so
    every block is three int8 convolutions.  7x7 is dropped because ONNX Runtime's int8 depthwise
    kernel gains least there (largest ofa-mbv3-lite @224, int8 vs fp32 on an AVX512-VNNI CPU: 2.0x
    with 3x3, 1.7x with 5x5, 1.4x with 7x7 kernels; ``benchmarks/int8.py``).
    """
    return replace(space, name=name, stem_act="relu", first_block_act="relu", head_act="relu", ks_choices=(3, 5),
                   stages=tuple(replace(s, act="relu", se=False) for s in space.stages),
                   description=f"{space.name} with ReLU everywhere, no squeeze-excite, kernels 3 and 5: quantization-friendly (int8).")


OFA_MBV3_LITE = register_space(lite(OFA_MBV3, "ofa-mbv3-lite"), builtin=True)
CIFAR_MBV3_LITE = register_space(lite(CIFAR_MBV3, "cifar-mbv3-lite"), builtin=True)


def mixed(space: SearchSpace, name: str) -> SearchSpace:
    """Activation (ReLU / h-swish) and squeeze-excite (off / on) chosen per stage inside one supernet:
    its subnets range from the int8-friendly ReLU-only, SE-free networks to the MobileNetV3 ones, and
    the search picks per stage (with the int8 and fp32 tables telling what each costs).  On CIFAR-10
    at the tiny scale its subnets beat those of a separate supernet per choice trained as long
    (+1.3 to +4.7 points, ``benchmarks/elastic.py --choice style``)."""
    return replace(space, name=name, act_choices=("relu", "h_swish"), se_choices=(False, True),
                   description=f"{space.name} with activation and squeeze-excite elastic per stage.")


CIFAR_MBV3_MIXED = register_space(mixed(CIFAR_MBV3, "cifar-mbv3-mixed"), builtin=True)
TINY_MIXED = register_space(mixed(TINY, "tiny-mixed"), builtin=True)


def elastic_width(space: SearchSpace, name: str, choices: tuple[float, ...]) -> SearchSpace:
    """Each stage's width chosen among ``choices`` (multipliers, the last 1.0) inside one supernet:
    a narrower stage uses the first filters of every projection in it and the first input channels
    of what reads it, as OFA's elastic ResNet widths do.  Unlike OFA's MobileNetV3 width
    multiplier (one supernet per multiplier), every width shares one supernet and the search
    picks per stage."""
    return replace(space, name=name, width_choices=tuple(choices),
                   description=f"{space.name} with each stage's width elastic ({', '.join(f'{w:g}x' for w in choices)}).")


CIFAR_MBV3_WIDTH = register_space(elastic_width(CIFAR_MBV3, "cifar-mbv3-width", (0.5, 0.75, 1.0)), builtin=True)
TINY_WIDTH = register_space(elastic_width(TINY, "tiny-width", (0.5, 1.0)), builtin=True)
