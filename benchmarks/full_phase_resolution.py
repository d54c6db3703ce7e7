"""Should the full phase train the largest network at its largest resolution only, or at every one?

    python benchmarks/full_phase_resolution.py --data imagefolder:PATH/cifar10/train     # ~25 min on 2 cores; run alone
    python benchmarks/full_phase_resolution.py --data ... --schedule --seeds 0           # ~25 min: then the shrinking phases
    python benchmarks/full_phase_resolution.py --data ... --schedule --seeds 0 --choices largest --shrink-lr 0.25

OFA draws each step's resolution from all of them from the first phase on, so the largest network
spends two thirds of its full-phase steps below the resolution it is scored at.  This trains tiny's
largest network for the CIFAR-10 recipe's full phase (its settings, equal epochs: on a GPU at 32x32 a
step costs about the same at any resolution) at 16/20/24 and at 24 alone (``r: max``), per seed, on
CIFAR-10 with the last 500 images of each class held out, and reports held-out top-1 at 24, BN
recalibrated.  With ``--schedule`` the shrinking phases follow (kernel 1, depth 1, expand 2 epochs,
every resolution, their learning rates times ``--shrink-lr``), and the largest and smallest subnets
are scored at the end.  A run directory that already holds a finished run is read, not retrained.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml
from _report import machine, update_section
from _runs import train_run

from edgenas.pretrained import ROOT

WORK = Path(__file__).resolve().parent / "_work" / "full_phase_resolution"
CHOICES = {"all": "all", "largest": "max"}  # the full phase's r
SHRINKING = {"kernel": (1, "all", "max", "max"), "depth": (1, "all", "max", "all"), "expand": (2, "all", "all", "all")}


def config(epochs: int, seed: int, r: str, schedule: bool, shrink_lr: float = 1.0) -> dict:
    recipe = yaml.safe_load((ROOT.parent / "recipes" / "cifar10-supernet.yaml").read_text())
    settings = {k: v for k, v in recipe.items() if k != "phases"}
    lr = {p["name"]: p["lr"] for p in recipe["phases"]}
    phases = [{"name": "full", "epochs": epochs, "lr": lr["full"], "ks": "max", "e": "max", "d": "max", "r": r}]
    if schedule:  # tiny's choices: one depth and one expand step
        phases += [{"name": n, "epochs": ep, "lr": lr[n] * shrink_lr, "ks": ks, "e": e, "d": d} for n, (ep, ks, e, d) in SHRINKING.items()]
    settings.update(space="tiny", batch_size=256, seed=seed, phases=phases)
    return settings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="the CIFAR-10 training split (imagefolder:PATH)")
    ap.add_argument("--epochs", type=int, default=12, help="full-phase epochs")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--schedule", action="store_true", help="then the shrinking phases; score largest and smallest at the end")
    ap.add_argument("--shrink-lr", type=float, default=1.0, help="with --schedule: the shrinking phases' learning rates times this")
    ap.add_argument("--choices", nargs="+", choices=list(CHOICES), default=list(CHOICES), help="the full phase's resolutions to run")
    args = ap.parse_args()
    rows, gains = [], []
    for seed in args.seeds:
        end = {}
        for name in args.choices:
            r, lr = CHOICES[name], f"-lr{args.shrink_lr:g}" if args.shrink_lr != 1 else ""
            history = train_run(WORK, f"seed{seed}-{name}{'-schedule' if args.schedule else ''}{lr}",
                                config(args.epochs, seed, r, args.schedule, args.shrink_lr), args.data)
            after_full = [h for h in history if h["phase"] == "full"][-1]["top1_max"]
            end[name] = (after_full, history[-1]["top1_max"], history[-1]["top1_min"]) if args.schedule else (after_full,)
            rows.append(f"| {seed} | {'16/20/24' if r == 'all' else '24 only'} | " + " | ".join(f"{v:.4f}" for v in end[name]) + " |")
        if len(end) == 2:
            gains.append([b - a for a, b in zip(end["all"], end["largest"])])
    cols = ["largest after the full phase", "largest at the end", "smallest at the end"][: 3 if args.schedule else 1]
    mean = [sum(g[i] for g in gains) / len(gains) * 100 for i in range(len(cols))] if gains else []
    body = "\n".join([
        f"tiny's largest network, {args.epochs} epochs of the CIFAR-10 recipe's full phase, CIFAR-10 (5,000 held out), "
        "each step's resolution drawn from 16/20/24 (as OFA) or 24 alone"
        + ("; then kernel 1, depth 1 and expand 2 epochs at every resolution" if args.schedule else "")
        + (f", at {args.shrink_lr:g}x the recipe's learning rates" if args.shrink_lr != 1 else "")
        + ". Held-out top-1 at 24, BN recalibrated.",
        "",
        "| seed | full phase at | " + " | ".join(cols) + " |",
        "|---|---|" + "---|" * len(cols),
        *rows,
        "",
        f"24 only minus 16/20/24, mean over {len(gains)} seed(s): " + ", ".join(f"{c} {m:+.2f} points" for c, m in zip(cols, mean)) + "."
        if gains else "",
    ])
    title = "Full phase: every resolution or the largest only" + (", then the shrinking phases" if args.schedule else "")
    update_section(title + (f" at {args.shrink_lr:g}x their learning rates" if args.shrink_lr != 1 else ""), body,
                   f"python benchmarks/full_phase_resolution.py --data {args.data} --epochs {args.epochs} --seeds "
                   + " ".join(map(str, args.seeds)) + (" --schedule" if args.schedule else "")
                   + (f" --choices {' '.join(args.choices)}" if args.choices != list(CHOICES) else "")
                   + (f" --shrink-lr {args.shrink_lr:g}" if args.shrink_lr != 1 else ""), machine())
    print(body)


if __name__ == "__main__":
    main()
