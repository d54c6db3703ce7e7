"""BatchNorm statistics recalibration: weight-shared subnets need their own running statistics."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import torch
from torch import nn

__all__ = ["bn_statistics_kept", "noise_batches", "recalibrate_bn"]


@contextmanager
def bn_statistics_kept(module: nn.Module) -> Iterator[None]:
    """Every BN running statistic of ``module`` put back as it was before the block, whatever ran inside."""
    buffers = [b for m in module.modules() if isinstance(m, nn.BatchNorm2d) for b in m.buffers()]
    kept = [b.clone() for b in buffers]
    try:
        yield
    finally:
        with torch.no_grad():
            for b, k in zip(buffers, kept):
                b.copy_(k)


@torch.no_grad()
def recalibrate_bn(model: nn.Module, batches: Iterable[torch.Tensor]) -> nn.Module:
    """Replace running mean/var of every BN layer by their average over ``batches``, each batch
    weighted by its images.

    Runs the (active) model in train mode without gradients, then restores momentum and the previous
    mode.  Only statistics change.  PyTorch's cumulative averaging (``momentum=None``) weights every
    batch alike, so a short last batch, whose statistics are the noisiest, would count as much as a
    full one; here a batch of ``n`` images after ``seen`` counts ``n / (seen + n)``.
    """
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(bn, bn.momentum) for bn in bns]
    was_training = model.training
    for bn in bns:
        bn.reset_running_stats()
    model.train()
    seen = 0
    try:
        for x in batches:
            for bn in bns:
                bn.momentum = len(x) / (seen + len(x))
            model(x)
            seen += len(x)
    finally:
        for bn, momentum in saved:
            bn.momentum = momentum
        model.train(was_training)
    if seen == 0:
        raise ValueError("recalibrate_bn needs at least one batch")
    return model


def noise_batches(resolution: int, n: int = 2, batch: int = 16, seed: int = 0) -> list[torch.Tensor]:
    """Seeded N(0, 1) images: BN statistics for untrained nets, so their outputs are not ~0."""
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, 3, resolution, resolution, generator=g) for _ in range(n)]
