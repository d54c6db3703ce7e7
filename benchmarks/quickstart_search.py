"""``quickstart --cifar10``'s search recipe at the old default budget (40 x 25) and the new one (100 x 50).

    python benchmarks/quickstart_search.py [TABLE ...]     # ~1 min a table on 2 cores; nothing else running

The recipe ``edgenas/recipes/cifar10-pretrained.yaml`` (shipped predictor, top-1 / latency / MACs at 32 px),
seeds 0-2, no random baseline, with the shipped AMD EPYC cifar-mbv3 table and any TABLE given (say the one
``edgenas quickstart --cifar10`` profiled on this machine: its ``latency_cifar-mbv3_fp32.json``; one profiled before
the weight term of a calibration was kept non-negative wants its calibration refitted first).  Reports the
final hypervolume and the search's seconds (in this process, after the first run loaded the predictor).
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import numpy as np
from _report import machine, update_section

from edgenas.search import SearchRun, load_search_config

ROOT = Path(__file__).resolve().parent.parent
RECIPE = ROOT / "edgenas" / "recipes" / "cifar10-pretrained.yaml"
SHIPPED = ROOT / "latency_tables" / "amd-epyc_cifar-mbv3_cpu-t1_fp32.json"
WORK = Path(__file__).resolve().parent / "_work" / "quickstart_search"
BUDGETS = ((40, 25), (100, 50))
SEEDS = range(3)


def main(tables: list[Path]) -> None:
    shutil.rmtree(WORK, ignore_errors=True)
    rows = []
    for t, table in enumerate(tables):
        for pop, gens in BUDGETS:
            hv, secs = [], []
            for seed in SEEDS:
                cfg = load_search_config(RECIPE, {"table": str(table), "pop_size": pop, "generations": gens, "seed": seed,
                                                  "baseline": False})
                start = time.perf_counter()
                hv.append(SearchRun(cfg, WORK / f"{t}-{pop}x{gens}-{seed}", progress=False).run()["hypervolume"])
                secs.append(time.perf_counter() - start)
            name = "shipped AMD EPYC table" if table == SHIPPED else f"`{table}`"
            rows.append(f"| {name} | {pop} x {gens} | {np.mean(hv):.4f} ({', '.join(f'{h:.4f}' for h in hv)}) | {np.mean(secs):.1f} |")
            print(rows[-1], flush=True)
    text = "\n".join([
        f"`{RECIPE.name}` (the shipped predictor; top-1, latency, MACs at 32 px), NSGA-II without the random baseline, "
        f"seeds {SEEDS.start}-{SEEDS.stop - 1}: final hypervolume, mean (per seed), and seconds a search takes in this process.", "",
        "| latency table | population x generations | hypervolume | seconds |", "|---|---|---|---|", *rows])
    update_section("Search: the quickstart --cifar10 recipe by budget", text,
                   "python benchmarks/quickstart_search.py" + "".join(f" {p}" for p in tables if p != SHIPPED), machine())


if __name__ == "__main__":
    main([SHIPPED, *(Path(a) for a in sys.argv[1:])])
