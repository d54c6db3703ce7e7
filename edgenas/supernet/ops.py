"""Elastic (weight-sharing) operators: each holds the largest weights and slices what is active.

Active input channels are read from the input tensor; active output channels, kernel size and
expand ratio are set by :meth:`DynamicMBConv.activate`.  ``copy_to`` writes the active slice into
the static module of the same shape, which is how extraction stays exact.

With static shapes every subnet runs at the largest shapes instead: a smaller kernel zero-padded
to the largest, inactive channels computed and then zeroed, their BN running statistics left as
they were.  The outputs, gradients and statistics are the sliced ones (tested), but every layer
keeps one shape whatever the subnet, so a GPU library that sets up each new shape (cuDNN's plans)
does so once rather than for every subnet.  The subnet's choices then reach a block as a boolean
tensor (its *code*: :meth:`DynamicMBConv.encode`), not as Python numbers, so one compiled graph
(and one CUDA graph) serves every subnet too.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..space import make_divisible
from .static import MBConv, build_act

__all__ = ["DynamicBatchNorm2d", "DynamicConv2d", "DynamicDWConv2d", "DynamicMBConv", "DynamicSE", "banded_order", "copy_bn", "permute_bn"]


def _first(w: torch.Tensor, *sizes: int) -> torch.Tensor:
    """The first ``sizes`` entries of ``w``'s leading dims: ``w`` itself at full size, as the largest
    network uses it (no slice, so its backward copies no gradient into a zero-filled full tensor)."""
    if all(n == full for n, full in zip(sizes, w.shape)):
        return w
    return w[tuple(slice(n) for n in sizes)]


def _kept(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``x`` with the channels that ``mask`` (bool, one per channel) leaves out set to zero."""
    return x.masked_fill(~mask.view(1, -1, 1, 1), 0.0)


def _first_ones(n: int, active: int) -> list[bool]:
    return [True] * active + [False] * (n - active)


def _centre(big: int, small: int) -> slice:
    start = (big - small) // 2
    return slice(start, start + small)


@torch.no_grad()
def copy_bn(dst: nn.BatchNorm2d, src: nn.BatchNorm2d) -> None:
    n = dst.num_features
    dst.weight.copy_(src.weight[:n])
    dst.bias.copy_(src.bias[:n])
    dst.running_mean.copy_(src.running_mean[:n])
    dst.running_var.copy_(src.running_var[:n])
    dst.num_batches_tracked.copy_(src.num_batches_tracked)


@torch.no_grad()
def permute_bn(bn: nn.BatchNorm2d, order: torch.Tensor) -> None:
    """Reorder a BN's channels (affine parameters and running statistics) to ``order``."""
    for t in (bn.weight, bn.bias, bn.running_mean, bn.running_var):
        t.copy_(t[order])


def banded_order(importance: torch.Tensor, bounds: list[int], keep_bands: int = 0) -> torch.Tensor:
    """Channel order by descending ``importance``; with ``keep_bands = k > 0`` the channels of the
    ``k + 1`` largest choices already trained (``bounds``: channel counts, largest first) stay in their
    nested bands, so a channel used by a smaller subnet stays used."""
    importance = importance.double().clone()  # float64: the band offsets below keep its digits
    if keep_bands > 0:
        right, offset = len(importance), -len(bounds) * 1e5
        for left in bounds[: keep_bands + 1]:
            importance[left:right] += offset
            offset += 1e5
            right = left
    return torch.argsort(importance, descending=True)


class DynamicConv2d(nn.Module):
    """Dense conv whose first ``out`` filters over the first ``in`` input channels are active."""

    def __init__(self, max_in: int, max_out: int, kernel: int = 1, stride: int = 1):
        super().__init__()
        self.stride, self.kernel = stride, kernel
        self.weight = nn.Parameter(torch.empty(max_out, max_in, kernel, kernel))

    def active_weight(self, out_ch: int, in_ch: int) -> torch.Tensor:
        return _first(self.weight, out_ch, in_ch)

    def forward(self, x: torch.Tensor, out_ch: int) -> torch.Tensor:
        w = self.active_weight(out_ch, x.size(1)).contiguous()
        return F.conv2d(x, w, None, self.stride, self.kernel // 2)


class DynamicDWConv2d(nn.Module):
    """Depthwise conv with elastic kernel size.

    A smaller kernel is the centre of the next larger one passed through a learned
    ``k^2 x k^2`` transformation (OFA's kernel transformation matrices, initialised to identity),
    so kernels share weights without being forced to be plain crops of each other.
    """

    def __init__(self, max_ch: int, kernels: tuple[int, ...], stride: int):
        super().__init__()
        self.kernels = tuple(sorted(kernels))
        self.stride = stride
        kmax = self.kernels[-1]
        self.weight = nn.Parameter(torch.empty(max_ch, 1, kmax, kmax))
        self.transforms = nn.ParameterDict(
            {f"{big}to{small}": nn.Parameter(torch.eye(small * small)) for small, big in zip(self.kernels, self.kernels[1:])}
        )

    def active_weight(self, channels: int, kernel: int) -> torch.Tensor:
        w = _first(self.weight, channels)
        for big, small in zip(reversed(self.kernels), reversed(self.kernels[:-1])):
            if big <= kernel:
                break
            w = self._smaller(w, big, small)
        return w

    def _smaller(self, w: torch.Tensor, big: int, small: int) -> torch.Tensor:
        c = w.size(0)
        w = w[:, :, _centre(big, small), _centre(big, small)].reshape(c, small * small)
        return F.linear(w, self.transforms[f"{big}to{small}"]).reshape(c, 1, small, small)

    def forward(self, x: torch.Tensor, kernel: int | torch.Tensor) -> torch.Tensor:
        """``kernel``: a size, or (static shapes) one bool per size of ``kernels`` selecting it, zero-padded
        to the largest: the same output at the largest kernel's shape."""
        c = x.size(1)
        if isinstance(kernel, int):
            return F.conv2d(x, self.active_weight(c, kernel).contiguous(), None, self.stride, kernel // 2, 1, c)
        kmax = self.kernels[-1]
        w: torch.Tensor = self.weight
        small: torch.Tensor = self.weight
        for j, (big, k) in reversed(list(enumerate(zip(self.kernels[1:], self.kernels)))):
            small = self._smaller(small, big, k)
            w = torch.where(kernel[j], F.pad(small, [(kmax - k) // 2] * 4), w)
        return F.conv2d(x, w.contiguous(), None, self.stride, kmax // 2, 1, c)


class DynamicBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm over the first ``C`` channels of the input; running stats are updated in place.

    ``active`` (static shapes): one bool per channel, ``x`` holding all of them; the channels not in
    use are normalised too, but their running statistics (and, for a block not run at all, the
    batch count) stay as they were."""

    def forward(self, x: torch.Tensor, active: torch.Tensor | None = None) -> torch.Tensor:
        c = x.size(1)
        if c == self.num_features and (active is None or not self.training or not self.track_running_stats):
            return super().forward(x)
        momentum = 0.0
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1 if active is None else active[0].long())
            momentum = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
        if active is not None:  # statistics updated in copies (not the buffers, which backward may hold), kept where active
            mean, var = self.running_mean.clone(), self.running_var.clone()
            y = F.batch_norm(x, mean, var, self.weight, self.bias, True, momentum, self.eps)
            with torch.no_grad():
                self.running_mean.copy_(torch.where(active, mean, self.running_mean))
                self.running_var.copy_(torch.where(active, var, self.running_var))
            return y
        return F.batch_norm(
            x, self.running_mean[:c], self.running_var[:c], self.weight[:c], self.bias[:c],
            self.training or not self.track_running_stats, momentum, self.eps,
        )


class DynamicSE(nn.Module):
    def __init__(self, max_ch: int, reduction: int, divisor: int):
        super().__init__()
        self.reduction, self.divisor = reduction, divisor
        max_mid = make_divisible(max_ch // reduction, divisor)
        self.reduce = nn.Conv2d(max_ch, max_mid, 1, bias=True)
        self.expand = nn.Conv2d(max_mid, max_ch, 1, bias=True)

    def mid(self, channels: int) -> int:
        return make_divisible(channels // self.reduction, self.divisor)

    def forward(self, x: torch.Tensor, active: torch.Tensor | None = None) -> torch.Tensor:
        """``active`` (static shapes): one bool per middle channel of the SE, those in use; ``x`` holds
        all channels, those not in use zero."""
        if active is not None:
            y = _kept(F.relu(self.reduce(x.mean((2, 3), keepdim=True))), active)
            return x * F.hardsigmoid(self.expand(y))
        c = x.size(1)
        m = self.mid(c)
        y = x.mean((2, 3), keepdim=True)
        y = F.relu(F.conv2d(y, _first(self.reduce.weight, m, c).contiguous(), _first(self.reduce.bias, m)))
        y = F.conv2d(y, _first(self.expand.weight, c, m).contiguous(), _first(self.expand.bias, c))
        return x * F.hardsigmoid(y)

    @torch.no_grad()
    def copy_to(self, dst: nn.Module, channels: int) -> None:
        m = self.mid(channels)
        dst.reduce.weight.copy_(self.reduce.weight[:m, :channels])
        dst.reduce.bias.copy_(self.reduce.bias[:m])
        dst.expand.weight.copy_(self.expand.weight[:channels, :m])
        dst.expand.bias.copy_(self.expand.bias[:channels])


class DynamicMBConv(nn.Module):
    """An MBConv slot of the supernet with elastic kernel size and expand ratio (and activation,
    squeeze-excite and output width where the space makes them elastic: ``se`` then says whether SE
    can run, ``acts`` lists the activations).  Input channels are read from the input, so a narrower
    previous stage just works."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, act: str, se: bool, kernels: tuple[int, ...],
                 expands: tuple[int | float, ...], se_reduction: int = 4, divisor: int = 8, acts: tuple[str, ...] = ()):
        super().__init__()
        self.in_ch, self.out_ch, self.stride, self.divisor = in_ch, out_ch, stride, divisor
        self.kernels, self.expands = tuple(kernels), tuple(expands)
        max_mid = self.mid_channels(in_ch, max(expands))
        self.expand_conv = DynamicConv2d(in_ch, max_mid)
        self.expand_bn = DynamicBatchNorm2d(max_mid)
        self.dw = DynamicDWConv2d(max_mid, kernels, stride)
        self.dw_bn = DynamicBatchNorm2d(max_mid)
        self.act = build_act(act)
        self.acts = tuple(acts) or (act,)
        self._act_fns = tuple(build_act(a) for a in self.acts)  # parameter-free: no state to register
        self.se = DynamicSE(max_mid, se_reduction, divisor) if se else None
        self.project = DynamicConv2d(max_mid, out_ch)
        self.project_bn = DynamicBatchNorm2d(out_ch)
        self.kernel, self.expand, self.act_name, self.use_se = max(kernels), max(expands), act, se
        self.active_in, self.active_out = in_ch, out_ch

    def mid_channels(self, in_ch: int, expand: int | float) -> int:
        return make_divisible(round(in_ch * expand), self.divisor)

    def activate(self, kernel: int, expand: int | float, act: str | None = None, se: bool | None = None,
                 out_ch: int | None = None, in_ch: int | None = None) -> None:
        """Select kernel and expand ratio, and where the space makes them elastic the activation
        (parameter-free, so every choice shares the weights), whether the SE module runs and the
        output channels (the first ``out_ch`` filters of the projection); ``in_ch``, the input
        channels in use, matters only with static shapes (the input then holds them all)."""
        self.kernel, self.expand = kernel, expand
        self.active_out = self.out_ch if out_ch is None else out_ch
        self.active_in = self.in_ch if in_ch is None else in_ch
        if act is not None and act != self.act_name:
            self.act, self.act_name = build_act(act), act
        if se is not None:
            if se and self.se is None:
                raise ValueError("this block was built without squeeze-excite")
            self.use_se = se

    # ---- static shapes: the active choices as a code ------------------------------------------
    @property
    def code_size(self) -> int:
        mid = self.expand_bn.num_features
        return 3 + len(self.dw.kernels) + len(self.acts) + mid + (self.se.reduce.out_channels if self.se is not None else 0) + self.out_ch

    def encode(self, run: bool = True) -> list[bool]:
        """The active choices as ``code_size`` bools: [run, residual, SE on], the kernel and the activation
        (one-hot), then the channels in use: middle, SE middle and output.  ``run=False``: a slot the
        subnet skips (its output is its input; nothing it holds is in use)."""
        mid, full = self.mid_channels(self.active_in, self.expand), self.expand_bn.num_features
        bits = [run, self.stride == 1 and self.active_in == self.active_out, self.se is not None and self.use_se]
        bits += [k == self.kernel for k in self.dw.kernels] + [a == self.act_name for a in self.acts]
        bits += _first_ones(full, mid if run else 0)
        if self.se is not None:
            bits += _first_ones(self.se.reduce.out_channels, self.se.mid(mid) if run else 0)
        return bits + _first_ones(self.out_ch, self.active_out if run else 0)

    def _activation(self, h: torch.Tensor, which: torch.Tensor) -> torch.Tensor:
        if len(self._act_fns) == 1:
            return self._act_fns[0](h)
        out = self._act_fns[-1](h)
        for j in range(len(self._act_fns) - 1):
            out = torch.where(which[j], self._act_fns[j](h), out)
        return out

    def forward(self, x: torch.Tensor, code: torch.Tensor | None = None) -> torch.Tensor:
        """``code`` (:meth:`encode`, as a tensor on ``x``'s device): run at the largest shapes (the
        module docstring), ``x`` holding all ``in_ch`` channels, those not in use zero, and so does the output."""
        if code is not None:
            return self._forward_static(x, code)
        mid = self.mid_channels(x.size(1), self.expand)
        h = self.act(self.expand_bn(self.expand_conv(x, mid)))
        h = self.act(self.dw_bn(self.dw(h, self.kernel)))
        if self.se is not None and self.use_se:
            h = self.se(h)
        h = self.project_bn(self.project(h, self.active_out))
        # the static block's rule (MBConvSpec.residual) on the active shapes
        return h + x if self.stride == 1 and x.size(1) == self.active_out else h

    def _forward_static(self, x: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        full = self.expand_bn.num_features
        n_se = self.se.reduce.out_channels if self.se is not None else 0
        o = 3 + len(self.dw.kernels)
        kernel, act = code[3:o], code[o : o + len(self.acts)]
        o += len(self.acts)
        mid, se_mid, out = code[o : o + full], code[o + full : o + full + n_se], code[o + full + n_se :]
        h = self._activation(self.expand_bn(self.expand_conv(x, full), mid), act)
        h = _kept(self._activation(self.dw_bn(self.dw(h, kernel), mid), act), mid)
        if self.se is not None:
            h = torch.where(code[2], self.se(h, se_mid), h)
        h = _kept(self.project_bn(self.project(h, self.out_ch), out), out)
        if self.stride != 1:
            return h
        if x.size(1) != h.size(1):  # equal active widths in stages of unequal full widths
            x = x[:, : h.size(1)] if x.size(1) > h.size(1) else F.pad(x, (0, 0, 0, 0, 0, h.size(1) - x.size(1)))
        return torch.where(code[0], torch.where(code[1], h + x, h), x)

    @torch.no_grad()
    def copy_to(self, dst: MBConv) -> None:
        """Write the active weights into a static block of the active shape."""
        s = dst.spec
        dst.expand_conv.conv.weight.copy_(self.expand_conv.active_weight(s.mid_ch, s.in_ch))
        copy_bn(dst.expand_conv.bn, self.expand_bn)
        dst.dw.conv.weight.copy_(self.dw.active_weight(s.mid_ch, s.kernel))
        copy_bn(dst.dw.bn, self.dw_bn)
        if s.se:
            assert self.se is not None
            self.se.copy_to(dst.se, s.mid_ch)
        dst.project.conv.weight.copy_(self.project.active_weight(s.out_ch, s.mid_ch))
        copy_bn(dst.project.bn, self.project_bn)

    @torch.no_grad()
    def sort_channels(self, keep_bands: int = 0) -> None:
        """Reorder middle channels by importance (L1 of the projection weights), OFA-style.

        With ``keep_bands = k > 0`` the channels of the ``k + 1`` largest expand ratios already
        trained stay in their nested bands (a channel used by a smaller subnet stays used), so
        sorting after a phase does not undo what earlier phases learned.
        """
        bounds = [self.mid_channels(self.in_ch, e) for e in sorted(self.expands, reverse=True)]
        order = banded_order(self.project.weight.abs().sum(dim=(0, 2, 3)), bounds, keep_bands)
        self.project.weight.copy_(self.project.weight[:, order])
        for bn in (self.dw_bn, self.expand_bn):
            permute_bn(bn, order)
        self.dw.weight.copy_(self.dw.weight[order])
        self.expand_conv.weight.copy_(self.expand_conv.weight[order])
        if self.se is not None:
            se = self.se
            se.expand.weight.copy_(se.expand.weight[order])
            se.expand.bias.copy_(se.expand.bias[order])
            se.reduce.weight.copy_(se.reduce.weight[:, order])
            se_order = torch.argsort(se.expand.weight.abs().sum(dim=(0, 2, 3)), descending=True)
            se.expand.weight.copy_(se.expand.weight[:, se_order])
            se.reduce.weight.copy_(se.reduce.weight[se_order])
            se.reduce.bias.copy_(se.reduce.bias[se_order])
