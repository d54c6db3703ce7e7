"""NSGA-II against random search as the budget grows: 1,000 evaluations, and the search recipes' 5,000.

    python benchmarks/search_budget.py        # ~3 min on 2 cores

Both draw their archs stratified by size (the default).  At 1,000 evaluations the draws alone cover
much of the front (``benchmarks/search_sampling.py``); this asks whether NSGA-II pulls ahead at the
budget the shipped recipes use (population 100 x 50 generations).  Same problems as
``search_sampling.py``: cifar-mbv3 at 32 with the shipped CIFAR-10 predictor, ofa-mbv3 at 160/224 with
a synthetic top-1; objectives top-1, latency (shipped table), MACs; 5 seeds.
"""

from __future__ import annotations

import shutil

import numpy as np
import search_sampling as base
from _report import machine, update_section

import search
from search import OFA_TABLE, ofa_predictor

BUDGETS = ((50, 20), (100, 50))
SEEDS = range(5)


def main() -> None:
    work = base.WORK.parent / "search_budget"
    shutil.rmtree(work, ignore_errors=True)
    search.WORK = work  # the synthetic ofa-mbv3 predictor is written here
    work.mkdir(parents=True)
    problems = {"cifar-mbv3 @32, shipped predictor": {"space": "cifar-mbv3", "table": str(base.C10_TABLE), "predictor": "cifar10",
                                                      "resolutions": [32]},
                "ofa-mbv3 @160/224, synthetic top-1": {"space": "ofa-mbv3", "table": str(OFA_TABLE), "predictor": str(ofa_predictor())}}
    rows = []
    for name, settings in problems.items():
        for pop, gens in BUDGETS:
            base.POP, base.GENS = pop, gens
            base.WORK = work / f"{pop}x{gens}"
            base.WORK.mkdir(exist_ok=True)
            hv = {a: [base.one(settings, a, "stratified", s)["hv"] for s in SEEDS] for a in ("nsga2", "random")}
            ahead = sum(n > r for n, r in zip(hv["nsga2"], hv["random"]))
            rows.append(f"| {name} | {pop} x {gens} ({pop * gens:,}) | {np.mean(hv['nsga2']):.4f} | {np.mean(hv['random']):.4f} | "
                        f"{ahead}/{len(SEEDS)} |")
            print(rows[-1], flush=True)
    text = "\n".join([
        "Both algorithms draw archs stratified by size; hypervolume normalised by the fixed bounds each run records, mean of "
        f"seeds {SEEDS.start}-{SEEDS.stop - 1}; objectives top-1, latency (shipped table), MACs.", "",
        "| problem | population x generations (evaluations) | NSGA-II HV | random search HV | NSGA-II ahead |",
        "|---|---|---|---|---|", *rows])
    update_section("Search: NSGA-II against random search by budget", text, "python benchmarks/search_budget.py", machine())


if __name__ == "__main__":
    main()
