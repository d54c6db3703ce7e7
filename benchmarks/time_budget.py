"""`edgenas train --time-budget`: how the planned schedule compares with the wall time it took.

    python benchmarks/time_budget.py      # ~2 min on 2 cores; run alone (it times things)

The tiny space on digits (CPU) with a 1.5-minute budget: the probe's step times, the epochs it
planned per phase (first plan, and after the re-fits at phase starts), the wall time of the whole
`train` call (probe and evaluations included) and the top-1 reached.  Then the H100 run behind the
shipped supernet replayed with its measured epoch times: its fixed first plan against re-fitting.
"""

from __future__ import annotations

import csv
import shutil
import time
from pathlib import Path

import numpy as np
from _report import machine, update_section

from edgenas import get_space, jobs
from edgenas.pretrained import ROOT
from edgenas.train import load_config
from edgenas.train.budget import epoch_seconds, replan

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
    gpu = replayed_gpu_run()
    body = "\n".join([
        f"Target: the whole schedule ends within the budget ({BUDGET_MIN:g} min = {60 * BUDGET_MIN:.0f} s).",
        "",
        "| probe: one-network step | sandwich step | evaluation | epochs: first plan -> after re-fits | planned | wall time | top-1 largest / smallest |",
        "|---|---|---|---|---|---|---|",
        f"| {1e3 * plan['one_network_step_s']:.1f} ms | {1e3 * plan['sandwich_step_s']:.1f} ms | {plan['eval_s']:.2f} s | "
        + " / ".join(f"{p.name} {first.get(p.name, '?')}->{p.epochs}" for p in cfg.phases)
        + f" | {plan['planned_s']:.0f} s | {seconds:.0f} s | {r['top1_max']:.3f} / {r['top1_min']:.3f} |",
        "",
        f"Replayed: the shipped supernet's H100 run (`edgenas/pretrained/cifar10/`: its config's plan, its metrics' epoch times; "
        f"an epoch beyond those measured takes its phase's median). {gpu['budget_s']:.0f} s left after set-up: "
        f"its fixed plan ({gpu['fixed_epochs']}) takes {gpu['fixed_s']:.0f} s ({gpu['fixed_s'] / gpu['budget_s'] - 1:+.0%}); "
        f"re-fitting at phase starts ({gpu['adapted_epochs']}) {gpu['adapted_s']:.0f} s ({gpu['adapted_s'] / gpu['budget_s'] - 1:+.0%}).",
    ])
    update_section("Time budget", body, "python benchmarks/time_budget.py", machine())
    print(body)


def replayed_gpu_run() -> dict:
    cfg = load_config(ROOT / "cifar10" / "train-config.yaml", {})
    seconds: dict[str, list[float]] = {}
    for row in csv.DictReader(open(ROOT / "cifar10" / "metrics.csv")):
        seconds.setdefault(row["phase"], []).append(epoch_seconds(row))
    space, plan = get_space(cfg.space), cfg.budget_plan or {}
    out = {"budget_s": plan["budget_s"]}
    for key, adapt in (("fixed", False), ("adapted", True)):
        phases, took = list(cfg.phases), []
        for pi in range(len(phases)):
            if adapt and pi > 0:
                phases = replan(phases, pi, plan, [{"phase": n, "train_seconds": t, "eval_seconds": 0.0} for n, t in took], space)
            m = seconds[phases[pi].name]
            took += [(phases[pi].name, m[k] if k < len(m) else float(np.median(m))) for k in range(phases[pi].epochs)]
        out[f"{key}_s"], out[f"{key}_epochs"] = sum(t for _, t in took), "/".join(str(p.epochs) for p in phases)
    return out


if __name__ == "__main__":
    main()
