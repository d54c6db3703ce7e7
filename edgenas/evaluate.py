"""Top-1 of subnets after BN recalibration, one arch or many (search evaluates thousands).

Each arch is extracted (the supernet is never modified), its BN statistics recomputed on a fixed,
seeded subset of training images at the arch's resolution, and evaluated on the validation set.
With ``static_shapes`` the supernet itself scores the arch at its largest layer shapes instead, and
is left as it was (BN statistics, active arch, mode): the same top-1, and on a GPU no layer shape
new to the process for each arch.
Resized calibration and validation batches are cached per resolution across archs, up to
CACHE_MEMORY; beyond it they are resized again for every arch, and a streamed validation set
(``ImageFiles``) is read batch by batch for every arch, so it never has to sit in memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from .checks import torch_device
from .cost import cost_model
from .data import DataError, DataSplit, ImageData, ImageFiles, augment, batches, checkpoint_data, load_images, materialize
from .heap import kept_heap
from .space import Arch, SearchSpace
from .supernet import Supernet, bn_statistics_kept, read_checkpoint, recalibrate_bn

__all__ = ["CACHE_MEMORY", "CALIB_BATCH_MEMORY", "EvalResult", "Evaluator", "calib_batch_size", "default_channels_last", "evaluate_checkpoint",
           "reference_logits"]


CALIB_BATCH_MEMORY = 2 * 2**30  # bytes of activations one BN-calibration batch may hold
# bytes of resized float batches kept across archs: resizing again cost 10% of an ofa-mbv3 evaluation at 224 px
# and nothing measurable for tiny at 24 (benchmarks/eval_cache.py), while 1,400 images took 842 MB per resolution
# there, and ofa-mbv3 has 25 resolutions
CACHE_MEMORY = 2**30
#: a subnet's MACs times the held-out images from which a CPU scores it with ONNX Runtime (exported once per subnet)
ORT_MIN_WORK = 2e10


def calib_batch_size(space: SearchSpace, r: int, n: int, floor: int) -> int:
    """Images per BN-calibration batch at resolution ``r``.

    Statistics are recalibrated in train mode, where every BN normalises by its batch's statistics.
    In random order batches of 256 score as one batch of 1,000 (the shipped CIFAR-10 supernet: -0.02
    to +0.06 points on six subnets; in stored, class-by-class order 0.3-1.5 points lower,
    benchmarks/bn_calibration.py), so the batch is sized for speed: all ``n`` images in one batch
    when the largest subnet's activations for them fit CALIB_BATCH_MEMORY, else as many as fit, and
    never fewer than ``floor``."""
    spec = space.net_spec(space.max_arch(r))
    peak = max([spec.stem.out_ch * spec.stem.out_res**2, spec.head.expand_ch * spec.head.in_res**2,
                *(b.mid_ch * b.in_res**2 for b in spec.blocks)])
    per_image = 3 * 4 * peak  # fp32; a layer's input, output and one temporary alive at once
    return max(1, min(n, max(floor, CALIB_BATCH_MEMORY // per_image)))


def default_channels_last(device: torch.device) -> bool:
    """NHWC activations where they are faster: on CUDA (tensor cores), and on CPU too, where oneDNN's
    depthwise and pointwise convolutions ran cifar-mbv3 training steps 1.8x and evaluation 1.6x
    faster than NCHW (benchmarks/channels_last.py)."""
    return device.type in ("cpu", "cuda")


class Evaluator:
    """Top-1 of subnets of one supernet on ``data.val``, BN statistics recalibrated per arch.

    Calibration images come from ``calib_data`` if given, else from ``data.train``: never from the
    images scored, so a test set is never used to set BN statistics, in batches as large as memory
    allows (``calib_batch_size``; ``batch_size`` is the smallest, and the scoring batch).  ``channels_last`` (NHWC)
    defaults to on for CPU and CUDA: the same top-1, 1.6x faster on a CPU (``default_channels_last``).
    ``static_shapes``: score in the supernet at its largest shapes (module docstring), for GPUs, where
    each new layer shape costs a set-up; on a CPU a small subnet then costs the largest one's time.
    ``onnxruntime``: on a CPU, score the exported subnet (the model ``edgenas export`` writes and scores) with ONNX
    Runtime: None (default) where its MACs times the held-out images reach ``ORT_MIN_WORK``, True always, False never.
    """

    def __init__(self, data: DataSplit, *, calib_images: int = 1000, batch_size: int = 256, device: str | torch.device = "cpu",
                 seed: int = 0, calib_data: ImageData | ImageFiles | None = None, bf16: bool = False, channels_last: bool | None = None,
                 workers: int = 0, static_shapes: bool = False, onnxruntime: bool | None = None):
        self.data, self.batch_size, self.device, self.workers = data, batch_size, torch_device(device), workers
        self.static_shapes = static_shapes
        self.onnxruntime = False if self.device.type != "cpu" or static_shapes or bf16 else onnxruntime
        src = calib_data if calib_data is not None else data.train
        n = min(calib_images, len(src))
        # in random order: data is stored class by class, and calibration batches in stored order would each
        # hold a few classes (4,000 CIFAR-10 images in 4 such batches: the largest subnet 0.7 points lower)
        self.calib = materialize(src.subset(np.random.default_rng(seed).permutation(len(src))[:n]), workers)
        self.bf16, self.channels_last = bf16, default_channels_last(self.device) if channels_last is None else channels_last
        self._calib_cache: dict[int, list[torch.Tensor]] = {}
        self._val_cache: dict[int, list[tuple[torch.Tensor, torch.Tensor]]] = {}
        self._cached_bytes = 0

    def _reserve(self, images: int, r: int) -> bool:
        """Reserve cache room for ``images`` resized to ``r``: False, reserving nothing, if they would pass CACHE_MEMORY."""
        nbytes = images * 3 * r * r * 4
        if self._cached_bytes + nbytes > CACHE_MEMORY:
            return False
        self._cached_bytes += nbytes
        return True

    def _prep(self, images: torch.Tensor, r: int) -> torch.Tensor:
        x = augment(images.to(self.device), r, self.data.mean, self.data.std)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def _calib_batches(self, space: SearchSpace, r: int) -> Iterable[torch.Tensor]:
        if r in self._calib_cache:
            return self._calib_cache[r]
        imgs = self.calib.images
        k = -(-len(imgs) // calib_batch_size(space, r, len(imgs), self.batch_size))  # batches needed
        bounds = np.linspace(0, len(imgs), k + 1).round().astype(int)  # of equal size: none short and noisy
        batches = (self._prep(imgs[a:b], r) for a, b in zip(bounds[:-1], bounds[1:]))
        if not self._reserve(len(imgs), r):
            return batches
        self._calib_cache[r] = list(batches)
        return self._calib_cache[r]

    def _val_batches(self, r: int) -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
        if r in self._val_cache:
            return self._val_cache[r]
        if isinstance(self.data.val, ImageFiles) or not self._reserve(len(self.data.val), r):
            return self._streamed(r)
        self._val_cache[r] = list(self._streamed(r))
        return self._val_cache[r]

    def _streamed(self, r: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for x, y in batches(self.data.val, self.batch_size, self.workers):
            yield self._prep(x, r), y.to(self.device)

    @torch.no_grad()
    def calibrated_subnet(self, net: Supernet, arch: Arch, recalibrate: bool = True) -> torch.nn.Module:
        """The static subnet of ``arch`` with BN statistics recomputed for it (what is evaluated and exported)."""
        sub = net.extract(arch).to(self.device)
        if self.channels_last:
            to: Any = sub.to  # in place; torch 2.5's type stubs lack Module.to(memory_format=...)
            to(memory_format=torch.channels_last)
        if recalibrate:
            recalibrate_bn(sub, self._calib_batches(net.space, arch.r))
        return sub.eval()

    @torch.no_grad()
    def correct(self, net: Supernet, arch: Arch, recalibrate: bool = True) -> np.ndarray:
        """Whether each held-out image (in order) is classified right: top-1 is its mean, and its halves tell
        how much of a difference between subnets is the images' sampling noise."""
        hits = []
        with kept_heap(), self._scoring(net, arch, recalibrate) as sub:
            if self._use_onnxruntime(net, arch):
                return self._onnxruntime_correct(sub, arch.r)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
                for x, y in self._val_batches(arch.r):
                    hits.append(sub(x).argmax(1) == y)
        return torch.cat(hits).cpu().numpy()  # one copy: one wait for the GPU, not one per batch

    def _use_onnxruntime(self, net: Supernet, arch: Arch) -> bool:
        if self.onnxruntime is None:
            return cost_model(net.space, net.num_classes).stats(arch).macs * len(self.data.val) >= ORT_MIN_WORK
        return self.onnxruntime

    def _onnxruntime_correct(self, sub: nn.Module, r: int) -> np.ndarray:
        """Score the exported subnet with ONNX Runtime, which runs these networks faster than PyTorch on a CPU: enough
        to pay for the export from ``ORT_MIN_WORK`` on (``benchmarks/eval_speed.py``)."""
        from .export import onnx_bytes, ort_session

        to: Any = sub.to  # NCHW weights: the exporter reads them as stored
        to(memory_format=torch.contiguous_format)
        session = ort_session(onnx_bytes(sub, (1, 3, r, r)), threads=torch.get_num_threads())
        return np.concatenate([session.run(None, {"input": np.ascontiguousarray(x.numpy())})[0].argmax(1) == y.numpy()
                               for x, y in self._val_batches(r)])

    @contextmanager
    def _scoring(self, net: Supernet, arch: Arch, recalibrate: bool) -> Iterator[nn.Module]:
        """The module that scores ``arch``: its extracted subnet, or with ``static_shapes`` the supernet itself
        (moved to the device and memory format in place), restored afterwards."""
        if not self.static_shapes:
            yield self.calibrated_subnet(net, arch, recalibrate)
            return
        to: Any = net.to  # in place; torch 2.5's type stubs lack Module.to(memory_format=...)
        to(self.device, memory_format=torch.channels_last) if self.channels_last else to(self.device)
        state = net.arch, net.static_shapes, net.training
        try:
            with bn_statistics_kept(net):
                net.set_static_shapes(True)
                net.activate(arch)
                if recalibrate:
                    recalibrate_bn(net, self._calib_batches(net.space, arch.r))
                yield net.eval()
        finally:
            net.set_static_shapes(state[1])
            net.activate(state[0])
            net.train(state[2])

    def top1(self, net: Supernet, arch: Arch, recalibrate: bool = True) -> float:
        return float(self.correct(net, arch, recalibrate).mean())

    def top1_many(self, net: Supernet, archs: Sequence[Arch], recalibrate: bool = True) -> np.ndarray:
        return np.array([self.top1(net, a, recalibrate) for a in archs])

    @property
    def n(self) -> int:
        return len(self.data.val)


@dataclass
class EvalResult:
    top1: float
    n: int
    recalibrated: bool
    calib_source: str
    space: str
    arch: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        how = f"BN recalibrated on {self.calib_source}" if self.recalibrated else "stored BN statistics"
        return f"top1 {self.top1:.4f} on {self.n} images ({how})"


def evaluate_checkpoint(space: SearchSpace, checkpoint: str, arch: Arch, data: str | None, *, calib_data: str | None = None,
                        calib_images: int = 1000, recalibrate: bool = True, device: str = "cpu") -> EvalResult:
    """``edgenas eval``: top-1 of ``arch`` on ``data``.

    ``data`` naming the checkpoint's own training data (at any path) scores its held-out split; other data is
    scored whole.  BN statistics come from ``calib_data`` (a training set) if given, else from the
    checkpoint's own training split, never from the images scored.
    """
    ckpt = read_checkpoint(checkpoint, space)
    info = ckpt.get("data") or {}
    scored = checkpoint_data(info, data)
    own = scored.own
    calib, source = None, f"the training split of {scored.name}"
    if calib_data is not None and calib_data != info.get("spec"):
        calib, _, _ = load_images(calib_data)
        if calib.classes != scored.val.classes:
            raise DataError(f"--calib-data {calib_data} has other classes than --data {data}")
        source = calib_data
    elif not own and recalibrate:
        try:
            trained_on = checkpoint_data(info)
        except DataError as exc:
            raise DataError(f"{exc}; give --calib-data (training images) to recalibrate BN for {data}") from None
        calib, source = trained_on.train, f"the training split of {trained_on.name}"
    ev = Evaluator(scored, calib_images=calib_images, calib_data=calib, device=device)
    top1 = ev.top1(Supernet.from_checkpoint(ckpt), arch, recalibrate=recalibrate)
    return EvalResult(top1, ev.n, recalibrate, source, space.name, arch.to_dict())


def reference_logits(net: Supernet, data_info: dict[str, Any]) -> dict[str, list[list[float]]]:
    """Logits of the largest and smallest subnet (eval mode, stored BN) on a fixed input: 2 seeded
    random uint8 images normalised with the data's statistics.  A shipped supernet's card records
    them; the tests check that its weights still produce them."""
    space = net.space
    r = max(space.resolutions)
    x = torch.randint(0, 256, (2, 3, r, r), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    x = augment(x, r, data_info["mean"], data_info["std"])
    net.eval()
    out = {}
    with torch.no_grad():
        for name, arch in (("largest", space.max_arch(r)), ("smallest", space.min_arch(r))):
            net.activate(arch)
            out[name] = [[round(float(v), 5) for v in row] for row in net(x)]
    return out
