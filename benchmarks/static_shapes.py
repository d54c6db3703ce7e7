"""Static shapes (``--static-shapes``) against sliced subnets on this CPU: what the same results cost here.

    python benchmarks/static_shapes.py      # ~4 min on 2 cores; needs no dataset
    python benchmarks/static_shapes.py --compiled   # ~8 min: one compiled graph for every subnet

Static shapes exist for GPUs, where each new layer shape pays a set-up; a CPU pays none, so this
measures only the other side, the largest network's arithmetic for every subnet.
1. Training: `cifar-mbv3` steps (forward and backward, float32, batch 64, 32 px) of the largest, the
   smallest and 4 random subnets, sliced and static alternating, three times; the median.
2. Labels: the shipped CIFAR-10 supernet, the same subnets recalibrated on 500 training images and
   scored on its 1,000 shipped held-out images, extracted (the default) and inside the supernet.
3. ``--compiled``: the static-shapes supernet under torch.compile (its cudagraphs backend, which on a
   CPU replays no graphs but traces the same way, and inductor, which generates code): the first step
   (the compilation), then the same training steps against eager static shapes, alternating; and how
   many graphs served the subnets.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F
from _report import machine, update_section

from edgenas import Supernet, get_space
from edgenas.data import checkpoint_data
from edgenas.evaluate import Evaluator
from edgenas.supernet import read_checkpoint
from edgenas.train.config import compile_options

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


def compiled(subnets: dict) -> str:
    from torch._dynamo.utils import counters

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, 3, 32, 32, generator=gen).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (64,), generator=gen)
    nets, first = {}, {}
    for name in ("eager", "cudagraphs", "inductor"):
        net = Supernet("cifar-mbv3", 10).to(memory_format=torch.channels_last)
        net.set_static_shapes()
        nets[name] = (net, net if name == "eager" else torch.compile(net, dynamic=True, **compile_options(True if name == "inductor" else name)))
        t = time.perf_counter()
        F.cross_entropy(nets[name][1](x), y).backward()
        first[name] = time.perf_counter() - t
        print(f"{name}: first step {first[name]:.1f} s", flush=True)
    graphs = counters["stats"]["unique_graphs"]
    took: dict[tuple[str, str], list[float]] = {}
    for _ in range(3):
        for sub, arch in subnets.items():
            for name, (net, model) in nets.items():
                net.activate(arch)
                t = time.perf_counter()
                F.cross_entropy(model(x), y).backward()
                took.setdefault((sub, name), []).append(time.perf_counter() - t)
    rows = []
    for sub in subnets:
        e, c, i = (float(np.median(took[sub, n])) for n in nets)
        rows.append(f"| {sub} | {e * 1e3:,.0f} ms | {c * 1e3:,.0f} ms ({c / e:.2f}x) | {i * 1e3:,.0f} ms ({i / e:.2f}x) |")
        print(rows[-1], flush=True)
    new_graphs = counters["stats"]["unique_graphs"] - graphs
    return "\n".join([
        "The static-shapes supernet under torch.compile: the subnet's choices are a tensor, so one graph serves every subnet. "
        f"Training steps of `cifar-mbv3` as above (float32, batch 64, 32 px; the median of three, alternating). The first step "
        f"(tracing, and compiling): cudagraphs backend {first['cudagraphs']:.0f} s, inductor {first['inductor']:.0f} s, eager "
        f"{first['eager']:.1f} s; graphs compiled for the {len(subnets)} subnets after that: {new_graphs}.", "",
        "| subnet | eager static | cudagraphs backend (CPU: no graphs replayed) | inductor |", "|---|---|---|---|", *rows, "",
        "Compiled, every subnet also runs the slots it skips (their output discarded), so a small subnet costs the largest "
        "network's steps. On a GPU the cudagraphs backend replays each step as CUDA graphs, which is what launch-bound 32x32 steps "
        "need; `gpu_job.py setup` times it there (`bf16-static-graphs`).",
    ])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--compiled", action="store_true", help="time the compiled static-shapes supernet instead (section 3)")
    if p.parse_args().compiled:
        body = compiled(archs())
        update_section("Static shapes compiled on CPU", body, "python benchmarks/static_shapes.py --compiled", machine())
        print(body)
        return
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
