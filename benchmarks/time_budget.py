"""`edgenas train --time-budget`: how the planned schedule compares with the wall time it took.

    python benchmarks/time_budget.py      # ~2 min on 2 cores; run alone (it times things)

The tiny space on digits (CPU) with a 1.5-minute budget: the probe's step times, the epochs it
planned per phase (first plan, and after the re-fits), the wall time of the whole `train` call
(probe and evaluations included) and the top-1 reached.  Then the GPU sessions behind the shipped
supernet replayed with their measured epoch times, each fixed first plan against re-fitting, and
so are the CPU runs of `benchmarks/recipe_share.py` where that has run.
"""

from __future__ import annotations

import csv
import shutil
import time
from dataclasses import replace
from pathlib import Path

from _report import machine, update_section

from edgenas import get_space, jobs
from edgenas.pretrained import ROOT
from edgenas.train import load_config
from edgenas.train.budget import measured_epochs, replay

WORK = Path(__file__).resolve().parent / "_work" / "time_budget"
BUDGET_MIN = 1.5


def main() -> None:
    shutil.rmtree(WORK, ignore_errors=True)
    t = time.perf_counter()
    r = jobs.train(str(WORK / "run"), overrides={"space": "tiny", "data": "digits", "device": "cpu", "batch_size": 64,
                                                  "bn_calib_images": 256, "time_budget": BUDGET_MIN}).to_dict()
    seconds = time.perf_counter() - t
    cfg = load_config(WORK / "run" / "config.yaml", {})
    plan = cfg.budget_plan or {}
    first = plan.get("epochs", {})
    card = ROOT / "cifar10"
    runs = {"the H100 run that trained it": replayed(card / "train-config-session-1.yaml", card / "metrics-session-1.csv"),
            # the last session's last epoch ran in a resumed process, which paid the phase's set-up again
            "the H200 session that continued it": replayed(card / "train-config.yaml", card / "metrics.csv", drop_last="all")}
    for run in sorted((WORK.parent / "recipe_share").glob("run-*/metrics.csv")):
        runs[f"`recipe_share.py` {run.parent.name[4:]} (CPU, tiny)"] = replayed(run.parent / "config.yaml", run)
    body = "\n".join([
        f"Target: the whole schedule ends within the budget ({BUDGET_MIN:g} min = {60 * BUDGET_MIN:.0f} s).",
        "",
        "| probe: one-network step | sandwich step | evaluation | epochs: first plan -> after re-fits | planned | wall time | top-1 largest / smallest |",
        "|---|---|---|---|---|---|---|",
        f"| {1e3 * plan['one_network_step_s']:.1f} ms | {1e3 * plan['sandwich_step_s']:.1f} ms | {plan['eval_s']:.2f} s | "
        + " / ".join(f"{p.name} {first.get(p.name, '?')}->{p.epochs}" for p in cfg.phases)
        + f" | {plan['planned_s']:.0f} s | {seconds:.0f} s | {r['top1_max']:.3f} / {r['top1_min']:.3f} |",
        "",
        "Replayed: the shipped supernet's GPU sessions (`edgenas/pretrained/cifar10/`: their configs' plans, their metrics' epoch "
        "times; an epoch beyond those measured takes its phase's median), and `benchmarks/recipe_share.py`'s runs where they "
        "are, with the first plan kept or re-fitted where the trainer re-fits (each phase start but the first's, and after "
        "each phase's epochs 1, 2, 4, 8, ...):",
        "",
        "| run | budget left after set-up | first plan kept | re-fitted |",
        "|---|---|---|---|",
        *[f"| {name} | {g['budget_s']:.0f} s | {g['fixed_epochs']}: {g['fixed_s']:.0f} s ({g['fixed_s'] / g['budget_s'] - 1:+.0%}) | "
          f"{g['adapted_epochs']}: {g['adapted_s']:.0f} s ({g['adapted_s'] / g['budget_s'] - 1:+.0%}) |" for name, g in runs.items()],
    ])
    update_section("Time budget", body, "python benchmarks/time_budget.py", machine())
    print(body)


def replayed(config: Path, metrics: Path, drop_last: str = "") -> dict:
    """A run's measured epoch times replayed: its fixed first plan against re-fits."""
    cfg = load_config(config, {})
    with open(metrics) as f:
        seconds = measured_epochs(csv.DictReader(f))
    if drop_last:
        seconds[drop_last] = seconds[drop_last][:-1]
    space, plan = get_space(cfg.space), cfg.budget_plan or {}
    first = [replace(p, epochs=plan.get("epochs", {}).get(p.name, p.epochs)) for p in cfg.phases]  # config.yaml: re-fitted ones
    out = {"budget_s": plan["budget_s"]}
    for key, refit in (("fixed", False), ("adapted", True)):
        out[f"{key}_s"], phases = replay(first, plan, seconds, space, refit)
        out[f"{key}_epochs"] = "/".join(str(p.epochs) for p in phases)
    return out


if __name__ == "__main__":
    main()
