"""How much of a predictor's Kendall tau do its labels allow, and does BN calibration set it?

    python benchmarks/label_noise.py --data imagefolder:.data/cifar10     # ~25 min on 2 cores (96 evaluations)

A subnet's label is its top-1 on the held-out images after its BN statistics are recomputed on a
fixed, seeded subset of training images.  Two noises separate a label from the subnet's accuracy:
which images are scored (``labels.tau_ceiling`` measures it, by split halves) and which images set
the BN statistics (invisible to the split halves: every half shares the calibration).  This labels
the same random subnets of the shipped CIFAR-10 supernet with two disjoint calibration draws of each
size, and reports the Kendall tau between the two draws' labels (1.0 if calibration adds no noise)
next to the split-half ceiling, so the predictor's labels can use the calibration size that ranks.
"""

from __future__ import annotations

import argparse

import numpy as np
from _report import machine, update_section
from scipy.stats import kendalltau

from edgenas.data import checkpoint_data
from edgenas.evaluate import Evaluator
from edgenas.pretrained import resolve_checkpoint
from edgenas.search.predictor import label_reliability, sample_archs
from edgenas.space import get_space
from edgenas.supernet import Supernet, read_checkpoint


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="the CIFAR-10 training split the shipped supernet was trained on (imagefolder:PATH)")
    ap.add_argument("--subnets", type=int, default=16)
    ap.add_argument("--calib-images", type=int, nargs="+", default=[500, 1000, 4000])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    space = get_space("cifar-mbv3")
    ckpt = read_checkpoint(resolve_checkpoint("cifar10"), space)
    net = Supernet.from_checkpoint(ckpt)
    data = checkpoint_data(ckpt["data"], args.data)
    archs = [space.decode(x) for x in sample_archs(space, args.subnets, args.seed)]
    rows = []
    for n in args.calib_images:
        # two calibration draws with no image in common: each from its own half of the training split
        order = np.random.default_rng(args.seed).permutation(len(data.train))
        halves = [data.train.subset(np.sort(order[i::2])) for i in range(2)]
        labels, correct = [], None
        for half in halves:
            ev = Evaluator(data, calib_images=n, calib_data=half, seed=args.seed)
            c = np.stack([ev.correct(net, a) for a in archs])
            labels.append(c.mean(1))
            correct = c if correct is None else correct
        tau = float(kendalltau(*labels).statistic)
        rel = label_reliability(correct)
        rows.append((n, tau, rel["tau_ceiling"], float(np.ptp(labels[0])), float(np.abs(labels[0] - labels[1]).mean())))
        print(rows[-1], flush=True)
    body = [f"{args.subnets} random subnets of the shipped CIFAR-10 supernet (`--checkpoint cifar10`), each labelled with top-1 on the "
            f"{len(data.val):,} held-out images after BN recalibration on two disjoint draws of training images. Kendall tau between the two "
            "draws' labels is the ranking calibration alone leaves (1.0: calibration adds no noise); the split-half ceiling is "
            "`labels.tau_ceiling` (image sampling noise only).", "",
            "| calibration images | tau between two calibration draws | split-half tau ceiling | top-1 span of the subnets | mean label change between draws |",
            "|---|---|---|---|---|"]
    body += [f"| {n:,} | {tau:.3f} | {ceil:.3f} | {span * 100:.2f} points | {diff * 100:.2f} points |" for n, tau, ceil, span, diff in rows]
    update_section("Predictor labels: calibration noise", "\n".join(body), f"python benchmarks/label_noise.py --data {args.data}", machine())


if __name__ == "__main__":
    main()
