"""Scoring subnets on a CPU: PyTorch against ONNX Runtime (the exported subnet), alternating per subnet.

    python benchmarks/eval_speed.py      # ~5 min on 2 cores; the CIFAR-10 zip in ../shared if there (else the shipped sample)

The shipped CIFAR-10 supernet: its largest, smallest and 6 random subnets, BN recalibrated on 500 training images (as
`edgenas predictor` labels), scored on the held-out split (5,000 images with the zip, the 1,000 shipped ones without)
with PyTorch and with ONNX Runtime; per subnet the seconds of each (extraction, recalibration, export and scoring: all
a label costs) and whether every image got the same verdict.  Then the `tiny` supernet on digits, whose networks and
held-out split are small: below `ORT_MIN_WORK` (MACs x images) the evaluator keeps PyTorch by default, timed here
both ways (the last column: what the default chooses).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from _report import machine, update_section

from edgenas import Supernet, get_space
from edgenas.cost import stats
from edgenas.data import checkpoint_data, load_data
from edgenas.evaluate import ORT_MIN_WORK, Evaluator
from edgenas.supernet import read_checkpoint

ZIP = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "cifar10" / "train.zip"
BACKENDS = {False: "PyTorch", True: "ONNX Runtime"}


def compare(net: Supernet, data, archs: dict, calib_images: int) -> tuple[list[str], dict[bool, float], int]:
    evs = {o: Evaluator(data, calib_images=calib_images, onnxruntime=o) for o in BACKENDS}
    for ev in evs.values():  # resized batches are cached per resolution: fill the caches first
        for r in net.space.resolutions:
            ev.correct(net, net.space.min_arch(r))
    rows, total, differ = [], {o: 0.0 for o in BACKENDS}, 0
    for name, arch in archs.items():
        took, hits = {}, {}
        for o, ev in evs.items():
            t = time.perf_counter()
            hits[o] = ev.correct(net, arch)
            took[o] = time.perf_counter() - t
            total[o] += took[o]
        differ += int((hits[False] != hits[True]).sum())
        macs = stats(net.space, arch).macs
        rows.append(f"| {name} (r={arch.r}) | {macs / 1e6:.1f} M | {hits[True].mean():.4f} | {took[False]:.2f} s | {took[True]:.2f} s | "
                    f"{took[False] / took[True]:.2f}x | {'yes' if macs * len(data.val) >= ORT_MIN_WORK else 'no'} |")
        print(rows[-1], flush=True)
    return rows, total, differ


def main() -> None:
    space = get_space("cifar-mbv3")
    ckpt = read_checkpoint("cifar10")
    net = Supernet.from_checkpoint(ckpt)
    data = checkpoint_data(ckpt["data"], f"imagefolder:{ZIP}" if ZIP.is_file() else None)
    rng = np.random.default_rng(0)
    archs = {"largest": space.max_arch(32), "smallest": space.min_arch(24), **{f"random-{i}": space.sample(rng) for i in range(6)}}
    rows, total, differ = compare(net, data, archs, 500)

    tiny = get_space("tiny")
    digits = load_data("digits")
    small_rows, small_total, small_differ = compare(Supernet(tiny, seed=0), digits, {"largest": tiny.max_arch(), "smallest": tiny.min_arch()}, 500)

    head = ["| subnet | MACs | top-1 | PyTorch | ONNX Runtime | speed-up | the default uses ONNX Runtime |", "|---|---|---|---|---|---|---|"]
    body = "\n".join([
        f"The shipped CIFAR-10 supernet, {len(data.val):,} held-out images, BN recalibrated on 500 training images; seconds a "
        "subnet (extract, recalibrate, export where ONNX Runtime scores, score), the two alternating:", "",
        *head, *rows, "",
        f"All {len(archs)}: ONNX Runtime {total[False] / total[True]:.2f}x faster ({total[False]:.1f} s vs {total[True]:.1f} s); "
        f"verdicts that differ: {differ} of {len(archs) * len(data.val):,}.", "",
        f"`tiny` on digits ({len(digits.val)} held-out images, random weights): below `ORT_MIN_WORK` = {ORT_MIN_WORK:.0e} "
        "MACs x images the evaluator keeps PyTorch:", "",
        *head, *small_rows, "",
        f"Both: ONNX Runtime {small_total[False] / small_total[True]:.2f}x ({small_total[False]:.2f} s vs {small_total[True]:.2f} s: "
        f"within the noise of sub-second timings); verdicts that differ: {small_differ}.",
    ])
    update_section("Scoring subnets on a CPU: PyTorch vs ONNX Runtime", body, "python benchmarks/eval_speed.py", machine())
    print(body)


if __name__ == "__main__":
    main()
