"""Does continuing a supernet in a second session (``--init``) recover what one longer run gets?

    python benchmarks/continue_training.py --data imagefolder:PATH/cifar10/train --seeds 0 1   # ~5x --minutes a seed on 2 cores; run alone

A GPU session now holds minutes of training, not a whole schedule, so the CIFAR-10 supernet grows
across sessions (``edgenas/recipes/cifar10-continue.yaml``).  On the tiny space (CPU-sized: the
same phases, tiny's choices), CIFAR-10 with the last 500 images of each class held out:

- first: the CIFAR-10 recipe's schedule under ``--time-budget M``;
- continued: ``--init first`` with the continue recipe's phases (largest network, then all elastic), budget M;
- continued, all elastic: ``--init first`` with one all-elastic phase only, budget M;
- one run: the CIFAR-10 recipe's schedule under ``--time-budget 2M``, from scratch.

Reports held-out top-1 of the largest and smallest subnets (BN recalibrated, as training evaluates).
A run directory that already holds a finished run is read, not retrained.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import yaml
from _report import machine, update_section
from _runs import train_run

from edgenas.pretrained import ROOT

WORK = Path(__file__).resolve().parent / "_work" / "continue_training"
RECIPES = ROOT.parent / "recipes"


def settings(recipe: str, **changes) -> dict:
    """A recipe's settings on the tiny space at batch 256 (its phases' choices kept: 'max' / 'all')."""
    cfg = yaml.safe_load((RECIPES / recipe).read_text())
    cfg.pop("init", None)
    cfg.update(space="tiny", batch_size=256, **changes)
    return cfg


def first_phases() -> list[dict]:
    phases = settings("cifar10-supernet.yaml")["phases"]  # kernel, depth-1/depth, expand-1/expand become tiny's own
    lr = {p["name"]: p["lr"] for p in phases}
    return [{"name": "full", "epochs": 32, "lr": lr["full"], "ks": "max", "e": "max", "d": "max", "r": "max"},
            {"name": "kernel", "epochs": 2, "lr": lr["kernel"], "ks": "all", "e": "max", "d": "max"},
            {"name": "depth", "epochs": 3, "lr": lr["depth"], "ks": "all", "e": "max", "d": "all"},
            {"name": "expand", "epochs": 4, "lr": lr["expand"], "ks": "all", "e": "all", "d": "all"}]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="the CIFAR-10 training split (imagefolder:PATH)")
    ap.add_argument("--minutes", type=float, default=6.0, help="--time-budget of a session (the one run gets twice)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0], help="training seeds (subnet draws, initialisation, order); "
                    "each seed's runs are its own, the data split is the same")
    args = ap.parse_args()
    m = args.minutes
    what = {"first": f"first session ({m:g} min, the CIFAR-10 recipe)",
            "continued": f"+ a second session ({m:g} min, the continue recipe: largest, then all elastic)",
            "continued-all": f"+ a second session ({m:g} min, all elastic only)",
            "one-run": f"one run of {2 * m:g} min (the CIFAR-10 recipe)"}
    rows, gains = [], []
    for seed in args.seeds:
        work = WORK if seed == 0 else WORK / f"seed-{seed}"  # seed 0: where the first runs of this benchmark are kept
        cont = settings("cifar10-continue.yaml", seed=seed)["phases"]
        first = str(work / "first" / "latest.pt")
        runs = {
            "first": (settings("cifar10-supernet.yaml", phases=first_phases(), seed=seed), m),
            "continued": (settings("cifar10-continue.yaml", init=first, seed=seed), m),
            "continued-all": (settings("cifar10-continue.yaml", init=first, phases=[{**cont[-1], "epochs": 8}], seed=seed), m),
            "one-run": (settings("cifar10-supernet.yaml", phases=first_phases(), seed=seed), 2 * m),
        }
        top1 = {}
        for name, (cfg, minutes) in runs.items():
            history = train_run(work, name, cfg, args.data, minutes)
            epochs: dict[str, int] = {}
            for r in history:
                epochs[r["phase"]] = r["epoch"]
            spent = sum(r.get("wall_seconds", r["train_seconds"] + r["eval_seconds"]) for r in history) / 60
            top1[name] = (history[-1]["top1_max"], history[-1]["top1_min"])
            rows.append(f"| {seed} | {what[name]} | " + " / ".join(f"{k} {v}" for k, v in epochs.items())
                        + f" | {spent:.1f} min | {top1[name][0]:.3f} | {top1[name][1]:.3f} |")
            print(rows[-1], flush=True)
        gains.append({k: (top1[k][0] - top1["one-run"][0], top1[k][1] - top1["one-run"][1]) for k in ("continued", "continued-all")})
    mean = {k: np.mean([g[k] for g in gains], axis=0) for k in ("continued", "continued-all")}
    body = "\n".join([
        "Training across sessions: a first run, then `--init` from it with a new schedule, against one run of the same total "
        "budget. Tiny space, CIFAR-10 (the last 500 images of each class held out), batch 256, CPU. Top-1 on the held-out "
        "images, BN recalibrated on 1,000 training images; differences under about a point are noise.",
        "",
        "| seed | run | epochs run | epochs' time | largest | smallest |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        f"Two sessions against one run of the same total time, mean over {len(gains)} seed(s) (points, largest / smallest): "
        + "; ".join(f"{k}: {100 * v[0]:+.1f} / {100 * v[1]:+.1f}" for k, v in mean.items()),
    ])
    update_section("Training across sessions (--init)", body, f"python benchmarks/continue_training.py --data {args.data} --minutes {m:g} "
                   f"--seeds {' '.join(map(str, args.seeds))}", machine())
    print(body)


if __name__ == "__main__":
    main()
