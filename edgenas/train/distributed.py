"""Data-parallel training without DDP's wrapper: every rank trains the same subnets (seeded by the
step), gradients are averaged with one flat all-reduce, and unused parameters count as zero."""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn

from ..errors import EdgeNASError

__all__ = ["all_reduce_grads", "check_in_sync"]


def all_reduce_grads(net: nn.Module, world: int) -> None:
    params = [p for p in net.parameters() if p.requires_grad]
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch._utils._flatten_dense_tensors(grads)
    dist.all_reduce(flat)
    flat /= world
    for p, g in zip(params, torch._utils._unflatten_dense_tensors(flat, grads)):
        p.grad = g


def check_in_sync(net: nn.Module) -> None:
    """All ranks must hold the same weights (same subnets, averaged gradients); fail loudly if not."""
    v = torch.stack([p.detach().double().sum() for p in net.parameters()]).sum().reshape(1)
    lo, hi = v.clone(), v.clone()
    dist.all_reduce(lo, op=dist.ReduceOp.MIN)
    dist.all_reduce(hi, op=dist.ReduceOp.MAX)
    if not torch.equal(lo, hi):
        raise EdgeNASError(f"DDP ranks hold different weights (checksums {float(lo)} vs {float(hi)})")
