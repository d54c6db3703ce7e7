"""NCHW or NHWC (channels_last) activations on this CPU: training steps and evaluation, interleaved.

    python benchmarks/channels_last.py      # ~8 min on 2 cores; needs no dataset

1. Training: the time-budget probe's one-network and sandwich steps (every resolution, after a warm-up
   step of the same subnets) for `tiny` at batch 128 and `cifar-mbv3` at batch 64 (digits upscaled:
   the data does not change the step), each setting timed twice, alternating.
2. Evaluation: the shipped CIFAR-10 supernet, its largest, smallest and 4 random subnets, BN
   recalibrated on 500 images and scored on its 1,000 shipped held-out images, alternating per subnet;
   top-1 must be the same either way.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
from _report import machine, update_section

from edgenas import Supernet, get_space
from edgenas.data import checkpoint_data
from edgenas.evaluate import Evaluator
from edgenas.supernet import read_checkpoint
from edgenas.train import Trainer, load_config

SETTINGS = {False: "NCHW", True: "NHWC (channels_last)"}


def training(scratch: Path) -> list[str]:
    rows = []
    for space, bs in (("tiny", 128), ("cifar-mbv3", 64)):
        trainers = {cl: Trainer(load_config(None, {"space": space, "data": "digits", "batch_size": bs, "device": "cpu", "channels_last": cl}),
                                scratch / f"{space}-{cl}", progress=False) for cl in SETTINGS}
        steps: dict[bool, dict[str, list[float]]] = {cl: {"one": [], "sandwich": []} for cl in SETTINGS}
        for _ in range(2):
            for cl, trainer in trainers.items():
                m = trainer.probe(steps=2)
                steps[cl]["one"].append(m["one_network_step_s"])
                steps[cl]["sandwich"].append(m["sandwich_step_s"])
                print(space, SETTINGS[cl], m["one_network_step_s"], m["sandwich_step_s"], flush=True)
        one = {cl: min(v["one"]) for cl, v in steps.items()}
        sandwich = {cl: min(v["sandwich"]) for cl, v in steps.items()}
        rows.append(f"| {space} | {bs} | {one[False] * 1e3:,.0f} ms | {one[True] * 1e3:,.0f} ms | {one[False] / one[True]:.2f}x | "
                    f"{sandwich[False] * 1e3:,.0f} ms | {sandwich[True] * 1e3:,.0f} ms | {sandwich[False] / sandwich[True]:.2f}x |")
    return rows


def evaluation() -> tuple[list[str], float]:
    space = get_space("cifar-mbv3")
    ckpt = read_checkpoint("cifar10")
    net, data = Supernet.from_checkpoint(ckpt), checkpoint_data(ckpt["data"])  # the shipped sample
    evs = {cl: Evaluator(data, calib_images=500, channels_last=cl) for cl in SETTINGS}
    for ev in evs.values():  # resized batches are cached per resolution: fill the caches first
        for r in space.resolutions:
            ev.top1(net, space.min_arch(r))
    rng = np.random.default_rng(0)
    archs = {"largest": space.max_arch(32), "smallest": space.min_arch(24), **{f"random-{i}": space.sample(rng) for i in range(4)}}
    rows, total = [], {cl: 0.0 for cl in SETTINGS}
    for name, arch in archs.items():
        took, top1 = {}, {}
        for cl, ev in evs.items():
            t = time.perf_counter()
            top1[cl] = ev.top1(net, arch)
            took[cl] = time.perf_counter() - t
            total[cl] += took[cl]
        assert top1[False] == top1[True], (name, top1)
        rows.append(f"| {name} (r={arch.r}) | {top1[True]:.4f} | {took[False]:.1f} s | {took[True]:.1f} s | {took[False] / took[True]:.2f}x |")
        print(rows[-1], flush=True)
    return rows, total[False] / total[True]


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        train_rows = training(Path(scratch))
    eval_rows, eval_ratio = evaluation()
    body = "\n".join([
        "Training steps: the time-budget probe (one-network and sandwich steps at every resolution, after a warm-up step of the",
        "same subnets; the faster of two alternating runs), digits upscaled to each space's resolutions.", "",
        "| space | batch | one network, NCHW | NHWC | speed-up | sandwich, NCHW | NHWC | speed-up |",
        "|---|---|---|---|---|---|---|---|", *train_rows, "",
        "Evaluation: the shipped CIFAR-10 supernet, BN recalibrated on 500 training images, 1,000 shipped held-out images "
        "(top-1 identical either way):", "",
        "| subnet | top-1 | NCHW | NHWC | speed-up |", "|---|---|---|---|---|", *eval_rows, "",
        f"All six evaluations: NHWC {eval_ratio:.2f}x faster. Training and evaluation use NHWC by default on CPU and CUDA "
        "(`channels_last: false` in a training config turns it off).",
    ])
    update_section("Channels-last on CPU", body, "python benchmarks/channels_last.py", machine())
    print(body)


if __name__ == "__main__":
    main()
