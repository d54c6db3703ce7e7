"""BN recalibration batches: top-1 of the shipped CIFAR-10 supernet's subnets, BN statistics
recalibrated on the same 1,000 training images in batches of 64 or 256 (in random order, or in the
order the data is stored: class by class) or all 1,000 at once.

    python benchmarks/bn_calibration.py --data imagefolder:.data/cifar10    # ~8 min; CIFAR-10's training split here

In train mode every BN normalises by its batch's statistics, so a deeper layer's statistics are
gathered on inputs that smaller batches make noisier than the deployed subnet (eval mode, fixed
statistics) will give it; batches of a few classes each are skewed besides.  Scored on the 5,000
held-out images the supernet never trained on.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from _report import machine, update_section

from edgenas import Supernet, get_space
from edgenas.data import augment, checkpoint_data
from edgenas.supernet import read_checkpoint, recalibrate_bn

# (batch size, order): "class" takes the images in stored order (class folders one after another)
VARIANTS = ((256, "class"), (64, "random"), (256, "random"), (1000, "random"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="CIFAR-10's training split (the shipped supernet's training data) at its path here")
    ap.add_argument("--random", type=int, default=4)
    args = ap.parse_args()
    space, ckpt = get_space("cifar-mbv3"), read_checkpoint("cifar10")
    net, data = Supernet.from_checkpoint(ckpt), checkpoint_data(ckpt["data"], args.data)
    assert data.own, "--data must be the supernet's training data (its held-out split is scored)"
    picked = np.random.default_rng(0).permutation(len(data.train))[:1000]
    calib = {"class": data.train.subset(np.sort(picked)).images, "random": data.train.subset(picked).images}

    def prep(images: torch.Tensor, r: int) -> torch.Tensor:
        return augment(images, r, data.mean, data.std).contiguous(memory_format=torch.channels_last)

    rng = np.random.default_rng(0)
    archs = {"largest": space.max_arch(32), "smallest": space.min_arch(24), **{f"random-{i}": space.sample(rng) for i in range(args.random)}}
    rows, gains, skew = [], [], []
    for name, arch in archs.items():
        val = [prep(data.val.images[i : i + 256], arch.r) for i in range(0, len(data.val), 256)]
        top1 = {}
        for bs, order in VARIANTS:
            sub = net.extract(arch).to(memory_format=torch.channels_last)
            images = calib[order]
            recalibrate_bn(sub, [prep(images[i : i + bs], arch.r) for i in range(0, len(images), bs)]).eval()
            with torch.no_grad():
                top1[bs, order] = float((torch.cat([sub(x).argmax(1) for x in val]) == data.val.labels).float().mean())
        gains.append(top1[1000, "random"] - top1[256, "random"])
        skew.append(top1[256, "random"] - top1[256, "class"])
        rows.append(f"| {name} (r={arch.r}) | " + " | ".join(f"{top1[v]:.4f}" for v in VARIANTS)
                    + f" | {skew[-1] * 100:+.2f} | {gains[-1] * 100:+.2f} |")
        print(rows[-1], flush=True)
    body = "\n".join([
        "The shipped CIFAR-10 supernet, BN statistics recalibrated on the same 1,000 training images in batches of 64 or 256 "
        "(in random order, or in stored order: class folders one after another) or all at once; top-1 on the 5,000 held-out images.",
        "", "| subnet | 256, stored order | 64, random order | 256, random order | one batch of 1,000 | 256: random vs stored order, "
        "points | 1,000 vs 256 random, points |", "|---|---|---|---|---|---|---|", *rows, "",
        f"Batches of 256 in random order instead of stored order: {np.mean(skew) * 100:+.2f} points on average "
        f"({min(skew) * 100:+.2f} to {max(skew) * 100:+.2f}); one batch of 1,000 instead of random batches of 256: "
        f"{np.mean(gains) * 100:+.2f} ({min(gains) * 100:+.2f} to {max(gains) * 100:+.2f}). edgenas calibrates in one batch when "
        "the largest subnet's activations for it fit 2 GiB (`edgenas.evaluate.calib_batch_size`: all 1,000 for cifar-mbv3, 256-291 "
        "for ofa-mbv3 at 224-160), else in batches of equal size, in random order, each weighted by its images "
        "(`edgenas.supernet.recalibrate_bn`).",
    ])
    update_section("BN recalibration batch size", body, f"python benchmarks/bn_calibration.py --data {args.data}", machine())
    print(body)


if __name__ == "__main__":
    main()
