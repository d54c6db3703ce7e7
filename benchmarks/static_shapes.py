"""Static shapes (``--static-shapes``) against sliced subnets on this CPU: what the same results cost here.

    python benchmarks/static_shapes.py      # ~4 min on 2 cores; needs no dataset

Static shapes exist for GPUs, where each new layer shape pays a set-up; a CPU pays none, so this
measures only the other side, the largest network's arithmetic for every subnet.
1. Training: `cifar-mbv3` steps (forward and backward, float32, batch 64, 32 px) of the largest, the
   smallest and 4 random subnets, sliced and static alternating, three times; the median.
2. Labels: the shipped CIFAR-10 supernet, the same subnets recalibrated on 500 training images and
   scored on its 1,000 shipped held-out images, extracted (the default) and inside the supernet.
"""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F
from _report import machine, update_section

from edgenas import Supernet, get_space
from edgenas.data import checkpoint_data
from edgenas.evaluate import Evaluator
from edgenas.supernet import read_checkpoint

MODES = {False: "sliced", True: "static"}


def archs() -> dict:
    space, rng = get_space("cifar-mbv3"), np.random.default_rng(0)
    at32 = space.resolutions.index(32)
    return {"largest": space.max_arch(32), "smallest": space.min_arch(32),
            **{f"random-{i}": space.decode(np.r_[space.encode(space.sample(rng))[:-1], at32]) for i in range(4)}}


def training(subnets: dict) -> list[str]:
    net = Supernet("cifar-mbv3", 10).to(memory_format=torch.channels_last)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, 3, 32, 32, generator=gen).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (64,), generator=gen)
    took: dict[tuple[str, bool], list[float]] = {}
    for _ in range(3):
        for name, arch in subnets.items():
            for static in MODES:
                net.set_static_shapes(static)
                net.activate(arch)
                t = time.perf_counter()
                F.cross_entropy(net(x), y).backward()
                took.setdefault((name, static), []).append(time.perf_counter() - t)
    rows = []
    for name in subnets:
        a, b = (float(np.median(took[name, s])) for s in MODES)
        rows.append(f"| {name} | {a * 1e3:,.0f} ms | {b * 1e3:,.0f} ms | {b / a:.2f}x |")
        print(rows[-1], flush=True)
    return rows


def labels(subnets: dict) -> tuple[list[str], float]:
    ckpt = read_checkpoint("cifar10")
    net, data = Supernet.from_checkpoint(ckpt), checkpoint_data(ckpt["data"])  # the shipped held-out sample
    evs = {s: Evaluator(data, calib_images=500, static_shapes=s) for s in MODES}
    for ev in evs.values():  # resized batches are cached per resolution: fill the caches first
        ev.top1(net, subnets["smallest"])
    rows, worst = [], 0.0
    for name, arch in subnets.items():
        took, hits = {}, {}
        for s, ev in evs.items():
            t = time.perf_counter()
            hits[s] = ev.correct(net, arch)
            took[s] = time.perf_counter() - t
        differ = float(np.mean(hits[False] != hits[True]))
        worst = max(worst, differ)
        rows.append(f"| {name} | {hits[False].mean():.4f} | {hits[True].mean():.4f} | {differ:.4f} | {took[False]:.1f} s | "
                    f"{took[True]:.1f} s | {took[True] / took[False]:.2f}x |")
        print(rows[-1], flush=True)
    return rows, worst


def main() -> None:
    subnets = archs()
    train_rows = training(subnets)
    label_rows, worst = labels(subnets)
    body = "\n".join([
        "What static shapes cost where layer shapes need no set-up: every subnet does the largest one's arithmetic. Training steps of "
        "`cifar-mbv3` (forward and backward, float32, batch 64, 32 px, random weights; the median of three, alternating):", "",
        "| subnet | sliced | static | ratio |", "|---|---|---|---|", *train_rows, "",
        "Labels: the shipped CIFAR-10 supernet, BN recalibrated on 500 training images, 1,000 shipped held-out images, as an "
        "extracted subnet (the default) and inside the supernet with static shapes:", "",
        "| subnet | top-1 extracted | top-1 static | images classified differently | extracted | static | ratio |",
        "|---|---|---|---|---|---|---|", *label_rows, "",
        f"At most {worst:.2%} of the images changed class between the two ways (float rounding: a padded kernel sums in another "
        "order). On a CPU static shapes only cost time, so they are off by default; on a GPU the set-up probe of "
        "`benchmarks/gpu_job.py` weighs this cost against the set-up they spare.",
    ])
    update_section("Static shapes on CPU", body, "python benchmarks/static_shapes.py", machine())
    print(body)


if __name__ == "__main__":
    main()
