"""`edgenas train --time-budget`: how the planned schedule compares with the wall time it took.

    python benchmarks/time_budget.py      # ~2 min on 2 cores; run alone (it times things)

The tiny space on digits (CPU) with a 1.5-minute budget: the probe's step times, the epochs it
planned per phase (first plan, and after the re-fits), the wall time of the whole `train` call
(probe and evaluations included) and the top-1 reached.  Then the GPU sessions behind the shipped
supernet replayed with their measured epoch times: each fixed first plan against re-fitting.
"""

from __future__ import annotations

import csv
import shutil
import time
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
    runs = {"the H100 run that trained it": replayed_gpu_run("session-1"), "the H200 session that continued it": replayed_gpu_run()}
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
        "times; an epoch beyond those measured takes its phase's median), with the first plan kept or re-fitted at each phase "
        "start and after each phase's first epoch:",
        "",
        "| session | budget left after set-up | fixed plan | re-fitted |",
        "|---|---|---|---|",
        *[f"| {name} | {g['budget_s']:.0f} s | {g['fixed_epochs']}: {g['fixed_s']:.0f} s ({g['fixed_s'] / g['budget_s'] - 1:+.0%}) | "
          f"{g['adapted_epochs']}: {g['adapted_s']:.0f} s ({g['adapted_s'] / g['budget_s'] - 1:+.0%}) |" for name, g in runs.items()],
    ])
    update_section("Time budget", body, "python benchmarks/time_budget.py", machine())
    print(body)


def replayed_gpu_run(session: str = "") -> dict:
    """A GPU session behind the shipped supernet (its last, or ``session-N``) replayed: fixed plan against re-fits."""
    suffix = f"-{session}" if session else ""
    cfg = load_config(ROOT / "cifar10" / f"train-config{suffix}.yaml", {})
    with open(ROOT / "cifar10" / f"metrics{suffix}.csv") as f:
        seconds = measured_epochs(csv.DictReader(f))
    if not session:  # the last session's last epoch ran in a resumed process, which paid the phase's set-up again
        seconds["all"] = seconds["all"][:-1]
    space, plan = get_space(cfg.space), cfg.budget_plan or {}
    out = {"budget_s": plan["budget_s"]}
    for key, refit in (("fixed", False), ("adapted", True)):
        out[f"{key}_s"], phases = replay(list(cfg.phases), plan, seconds, space, refit)
        out[f"{key}_epochs"] = "/".join(str(p.epochs) for p in phases)
    return out


if __name__ == "__main__":
    main()
