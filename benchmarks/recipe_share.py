"""How much of a fixed training budget should the full-network phase get?  (the CIFAR-10 recipe's bet)

    python benchmarks/recipe_share.py --data imagefolder:PATH/cifar10/train     # ~45 min on 2 cores; run alone

The CIFAR-10 recipe's proportions with its full phase at 8 epoch-units (a fifth of the time, as
the shipped supernet had) and at 32 (about half, the recipe now), each under the same
``--time-budget``, on the tiny space (CPU-sized: the same phases, with the tiny space's choices
for depth and expand), the last 500 images of each class held out.  Reports the held-out top-1 of
the largest and the smallest subnet after each run (BN recalibrated), and where the largest stood
when the full phase ended.  A third run trains the largest network alone (the full phase only) for
the same budget: what weight sharing costs the largest subnet at equal compute.  A run directory that
already holds a finished run is read, not retrained.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml
from _report import machine, update_section
from _runs import train_run

from edgenas.pretrained import ROOT
from edgenas.train.budget import epoch_seconds

WORK = Path(__file__).resolve().parent / "_work" / "recipe_share"
# the full phase's epoch-units, and whether the shrinking phases (the recipe's 2 + 3 + 4) follow
VARIANTS = {"fifth": (8, True), "half": (32, True), "alone": (32, False)}


def config(full: int, shrink: bool = True) -> dict:
    recipe = yaml.safe_load((ROOT.parent / "recipes" / "cifar10-supernet.yaml").read_text())
    settings = {k: v for k, v in recipe.items() if k != "phases"}
    lr = {p["name"]: p["lr"] for p in recipe["phases"]}
    settings.update(space="tiny", batch_size=256, phases=[
        {"name": "full", "epochs": full, "lr": lr["full"], "ks": "max", "e": "max", "d": "max"},
        {"name": "kernel", "epochs": 2, "lr": lr["kernel"], "ks": "all", "e": "max", "d": "max"},
        {"name": "depth", "epochs": 3, "lr": lr["depth"], "ks": "all", "e": "max", "d": "all"},
        {"name": "expand", "epochs": 4, "lr": lr["expand"], "ks": "all", "e": "all", "d": "all"},
    ][: None if shrink else 1])
    return settings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="the CIFAR-10 training split (imagefolder:PATH)")
    ap.add_argument("--minutes", type=float, default=14.0, help="--time-budget of each run")
    args = ap.parse_args()
    rows = []
    for name, (full, shrink) in VARIANTS.items():
        history = train_run(WORK, f"run-{name}", config(full, shrink), args.data, args.minutes)
        epochs = {}
        for r in history:
            epochs[r["phase"]] = r["epoch"]
        after_full = [r for r in history if r["phase"] == "full"][-1]
        label = f"full = {full} ({name})" if shrink else "full only: the largest network alone"
        rows.append(f"| {label} | " + " / ".join(f"{k} {v}" for k, v in epochs.items())
                    + f" | {sum(map(epoch_seconds, history)) / 60:.1f} min"
                    + f" | {after_full['top1_max']:.3f} | {history[-1]['top1_max']:.3f} | "
                    + (f"{history[-1]['top1_min']:.3f} |" if shrink else "- |"))
    body = "\n".join([
        "The CIFAR-10 recipe's phases on the tiny space, CIFAR-10 (5,000 held out), the same time budget; only the full "
        "phase's share differs, and the last run trains the largest network alone (the full phase only) for the same budget. "
        "Top-1 on the held-out images, BN recalibrated; one seed each.",
        "",
        "| full phase | epochs run | training | largest after the full phase | largest at the end | smallest at the end |",
        "|---|---|---|---|---|---|",
        *rows,
    ])
    update_section("Full-phase share of a training budget", body,
                   f"python benchmarks/recipe_share.py --data {args.data} --minutes {args.minutes:g}", machine())
    print(body)


if __name__ == "__main__":
    main()
