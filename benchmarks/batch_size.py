"""Batch 512 or 1024 for the CIFAR-10 recipes, at equal GPU time?

    python benchmarks/batch_size.py --data imagefolder:PATH/cifar10/train --seeds 0 1   # ~45 min on 2 cores; run alone

On the H100 the largest cifar-mbv3 network trained 8,575 images/s at batch 512 and 11,777 at 1024
(BENCHMARKS "Supernet on one GPU: cifar10, session 1"): at 32x32 a step is bound by kernel launches,
so a batch twice as large costs far less than twice the time, and a fixed GPU allowance holds
``--speedup`` (1.37) times the epochs at 1024.  Fewer, larger steps learn less per epoch, though.
This trains the largest network of the tiny space alone (the recipes' full phase, CPU-sized) from
scratch on CIFAR-10 (last 500 images of each class held out): ``--epochs`` at batch 512, and
``--speedup`` times as many at 1024, with the recipes' learning rate for batch 512 scaled with the
batch (``lr_base_size: 512``).  Epoch counts are fixed (no ``--time-budget``): what this machine's
speed does not decide.  A run directory that already holds a finished run is read, not retrained.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import yaml
from _report import machine, update_section
from _runs import train_run

from edgenas.pretrained import ROOT

WORK = Path(__file__).resolve().parent / "_work" / "batch_size"


def config(batch: int, epochs: int, seed: int) -> dict:
    recipe = yaml.safe_load((ROOT.parent / "recipes" / "cifar10-supernet.yaml").read_text())
    full = next(p for p in recipe["phases"] if p["name"] == "full")
    settings = {k: v for k, v in recipe.items() if k != "phases"}
    settings.update(space="tiny", batch_size=batch, seed=seed, phases=[{**full, "epochs": epochs}])
    return settings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="the CIFAR-10 training split (imagefolder:PATH)")
    ap.add_argument("--epochs", type=int, default=20, help="epochs at batch 512")
    ap.add_argument("--speedup", type=float, default=11_777 / 8_575, help="images/s at 1024 over images/s at 512 on the GPU")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    args = ap.parse_args()
    variants = {512: args.epochs, 1024: round(args.epochs * args.speedup)}
    top1: dict[int, list[float]] = {b: [] for b in variants}
    for seed in args.seeds:
        for batch, epochs in variants.items():
            last = train_run(WORK, f"b{batch}-e{epochs}-s{seed}", config(batch, epochs, seed), args.data)[-1]
            top1[batch].append(last["top1_max"])
            print(f"seed {seed}, batch {batch}, {epochs} epochs: top-1 {last['top1_max']:.4f}", flush=True)
    diff = np.subtract(top1[1024], top1[512]) * 100
    rows = [f"| {b} | {e} | {' / '.join(f'{t:.3f}' for t in top1[b])} | {np.mean(top1[b]):.3f} |" for b, e in variants.items()]
    body = "\n".join([
        f"The largest network of the tiny space trained alone from scratch (the CIFAR-10 recipe's full phase: peak learning "
        f"rate 0.4 for batch 512, scaled with the batch; cosine after a 10% warm-up), CIFAR-10 with 5,000 held out; batch 1024 "
        f"gets {args.speedup:.2f}x the epochs of batch 512, what the H100 ran in equal time.  Held-out top-1 (BN recalibrated) "
        f"after the last epoch, seeds {', '.join(map(str, args.seeds))}.",
        "",
        "| batch | epochs | top-1 per seed | mean |",
        "|---|---|---|---|",
        *rows,
        "",
        f"Batch 1024 minus batch 512, per seed: {', '.join(f'{d:+.1f}' for d in diff)} points (mean {diff.mean():+.1f}).",
    ])
    update_section("Batch size at equal GPU time", body,
                   f"python benchmarks/batch_size.py --data {args.data} --epochs {args.epochs} --seeds {' '.join(map(str, args.seeds))}",
                   machine())
    print(body)


if __name__ == "__main__":
    main()
