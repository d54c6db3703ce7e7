"""Data-parallel training without DDP's wrapper: every rank trains the same subnets (seeded by the
step), and gradients are averaged with one flat all-reduce (so DDP's unused-parameter search is
not needed).
Batch norm is synchronised (statistics over the global batch, on CPU and GPU alike), so N
processes train as one process with N times the batch."""

from __future__ import annotations

import types

import torch
import torch.distributed as dist
from torch import nn

from ..errors import EdgeNASError

__all__ = ["all_reduce_grads", "check_in_sync", "sync_batchnorm"]


def _synced_forward(self: nn.BatchNorm2d, x: torch.Tensor, active: torch.Tensor | None = None) -> torch.Tensor:
    """Batch norm over the first C channels with mean and variance of the global batch (differentiable
    all-reduces of per-rank sums); evaluation mode is plain batch norm.  ``active`` (static shapes, one
    bool per channel): only those channels' running statistics are updated."""
    if not self.training:
        return type(self).forward(self, x) if active is None else type(self).forward(self, x, active)  # type: ignore[call-arg]
    from torch.distributed.nn.functional import all_reduce

    c = x.size(1)
    xf = x.float()
    total = all_reduce(torch.cat([xf.sum((0, 2, 3)), xf.new_tensor([xf.numel() / c])]))
    n = total[-1]
    mean = total[:c] / n
    shape = (1, c, 1, 1)
    centred = xf - mean.view(shape)
    var = all_reduce((centred * centred).sum((0, 2, 3))) / n  # two passes: no cancellation in E[x^2] - E[x]^2
    tracked, run_mean, run_var = self.num_batches_tracked, self.running_mean, self.running_var
    assert tracked is not None and run_mean is not None and run_var is not None  # supernet BNs track statistics
    with torch.no_grad():
        tracked.add_(1 if active is None else active[0].long())
        m = self.momentum if self.momentum is not None else 1.0 / float(tracked)
        new_mean = run_mean[:c].mul(1 - m).add_(mean.detach(), alpha=m)
        new_var = run_var[:c].mul(1 - m).add_(var.detach() * (n / (n - 1)), alpha=m)
        run_mean[:c] = new_mean if active is None else torch.where(active, new_mean, run_mean)
        run_var[:c] = new_var if active is None else torch.where(active, new_var, run_var)
    y = centred * torch.rsqrt(var + self.eps).view(shape) * self.weight[:c].view(shape) + self.bias[:c].view(shape)
    return y.to(x.dtype)


def sync_batchnorm(net: nn.Module) -> None:
    """Every batch norm of ``net`` (static or elastic) normalises with global-batch statistics in
    training; parameters, buffers and extracted subnets are unchanged."""
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.forward = types.MethodType(_synced_forward, m)  # type: ignore[method-assign]


def all_reduce_grads(net: nn.Module, world: int) -> None:
    """Average the gradients over ranks.  Every rank trained the same subnets, so the same
    parameters have gradients; one no subnet used keeps none, so the optimizer leaves it alone
    (no momentum, no weight decay) exactly as in one process."""
    params = [p for p in net.parameters() if p.grad is not None]
    grads = [p.grad for p in params if p.grad is not None]
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
