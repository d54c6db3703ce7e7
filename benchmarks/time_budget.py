"""`edgenas train --time-budget`: how the planned schedule compares with the wall time it took.

    python benchmarks/time_budget.py      # ~2 min on 2 cores; run alone (it times things)

The tiny space on digits (CPU) with a 1.5-minute budget: the probe's step times, the epochs it
planned per phase, the wall time of the whole `train` call (probe and evaluations included) and
the top-1 reached.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from _report import machine, update_section

from edgenas import jobs
from edgenas.train import load_config

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
    body = "\n".join([
        f"Target: the whole schedule ends within the budget ({BUDGET_MIN:g} min = {60 * BUDGET_MIN:.0f} s).",
        "",
        "| probe: one-network step | sandwich step | evaluation | planned epochs | planned | wall time | top-1 largest / smallest |",
        "|---|---|---|---|---|---|---|",
        f"| {1e3 * plan['one_network_step_s']:.1f} ms | {1e3 * plan['sandwich_step_s']:.1f} ms | {plan['eval_s']:.2f} s | "
        + " / ".join(f"{p.name} {p.epochs}" for p in cfg.phases)
        + f" | {plan['planned_s']:.0f} s | {seconds:.0f} s | {r['top1_max']:.3f} / {r['top1_min']:.3f} |",
    ])
    update_section("Time budget", body, "python benchmarks/time_budget.py", machine())
    print(body)


if __name__ == "__main__":
    main()
