"""Should the full phase train the largest network at its largest resolution only, or at every one?

    python benchmarks/full_phase_resolution.py --data imagefolder:PATH/cifar10/train     # ~25 min on 2 cores; run alone

OFA draws each step's resolution from all of them from the first phase on, so the largest network
spends two thirds of its full-phase steps below the resolution it is scored at.  This trains tiny's
largest network for the CIFAR-10 recipe's full phase (its settings, equal epochs: on a GPU at 32x32 a
step costs about the same at any resolution) at 16/20/24 and at 24 alone, per seed, on CIFAR-10 with
the last 500 images of each class held out, and reports held-out top-1 at 24, BN recalibrated.  A run
directory that already holds a finished run is read, not retrained.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import yaml
from _report import machine, update_section

from edgenas import jobs
from edgenas.pretrained import ROOT

WORK = Path(__file__).resolve().parent / "_work" / "full_phase_resolution"
CHOICES = {"all": [16, 20, 24], "largest": [24]}


def config(epochs: int, seed: int, resolutions: list[int]) -> dict:
    recipe = yaml.safe_load((ROOT.parent / "recipes" / "cifar10-supernet.yaml").read_text())
    settings = {k: v for k, v in recipe.items() if k != "phases"}
    full = next(p for p in recipe["phases"] if p["name"] == "full")
    settings.update(space="tiny", batch_size=256, seed=seed, resolutions=resolutions, phases=[dict(full, epochs=epochs)])
    return settings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="the CIFAR-10 training split (imagefolder:PATH)")
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    args = ap.parse_args()
    rows, gains = [], []
    for seed in args.seeds:
        top1 = {}
        for name, resolutions in CHOICES.items():
            run = WORK / f"seed{seed}-{name}"
            cfg_path = WORK / f"seed{seed}-{name}.yaml"
            cfg_path.parent.mkdir(parents=True, exist_ok=True)
            cfg_path.write_text(yaml.safe_dump(config(args.epochs, seed, resolutions), sort_keys=False))
            jobs.train(str(run), config=str(cfg_path), overrides={"data": args.data, "device": "cpu"}, resume=(run / "config.yaml").exists())
            top1[name] = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])["top1_max"]
        gains.append(top1["largest"] - top1["all"])
        rows.append(f"| {seed} | {top1['all']:.4f} | {top1['largest']:.4f} | {gains[-1] * 100:+.2f} |")
    body = "\n".join([
        f"tiny's largest network, {args.epochs} epochs of the CIFAR-10 recipe's full phase, CIFAR-10 (5,000 held out), "
        "each step's resolution drawn from 16/20/24 (as OFA) or 24 alone. Held-out top-1 at 24, BN recalibrated.",
        "",
        "| seed | 16/20/24 | 24 only | difference (points) |",
        "|---|---|---|---|",
        *rows,
        "",
        f"Mean difference: {sum(gains) / len(gains) * 100:+.2f} points over {len(gains)} seed(s).",
    ])
    update_section("Full phase: every resolution or the largest only", body,
                   f"python benchmarks/full_phase_resolution.py --data {args.data} --epochs {args.epochs} --seeds "
                   + " ".join(map(str, args.seeds)), machine())
    print(body)


if __name__ == "__main__":
    main()
