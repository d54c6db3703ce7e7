"""How the first archs are drawn: uniform genes or sizes spread over the space (``--sampling``).

    python benchmarks/search_sampling.py        # ~2 min on 2 cores

Uniform genes make mid-sized archs, and crossover of mid-sized parents makes mid-sized children:
the ends of the front (the smallest, fastest networks and the largest, most accurate) are many
generations away.  This runs NSGA-II and random search with each sampling at equal budget, 5 seeds:

- cifar-mbv3 at 32 with the shipped CIFAR-10 predictor (fitted on real supernet evaluations) and
  the shipped cifar-mbv3 latency table of this CPU: top-1, latency, MACs;
- ofa-mbv3 at 160 and 224 with the shipped ofa-mbv3 table and a synthetic top-1 (saturating in
  MACs, as in ``benchmarks/search.py``: no trained ofa-mbv3 supernet exists here).

It reports the hypervolume after the first generation, after 5 and at the end, and the smallest
MACs and latency on the final front (how far towards the small end it reached).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from _report import machine, update_section

import search
from edgenas.search import SearchRun, load_search_config
from search import OFA_TABLE, ofa_predictor

ROOT = Path(__file__).resolve().parent.parent
WORK = Path(__file__).resolve().parent / "_work" / "search_sampling"
C10_TABLE = ROOT / "latency_tables" / "amd-epyc_cifar-mbv3_cpu-t1_fp32.json"
SEEDS = range(5)
POP, GENS = 50, 20


def one(settings: dict, algorithm: str, sampling: str, seed: int) -> dict:
    out = WORK / f"{settings['space']}-{algorithm}-{sampling}-{seed}"
    cfg = load_search_config(None, {"objectives": ["top1", "latency", "macs"], **settings, "algorithm": algorithm,
                                    "sampling": sampling, "seed": seed, "pop_size": POP, "generations": GENS, "baseline": False})
    s = SearchRun(cfg, out, progress=False).run()
    hv = [float(line.split(",")[3]) for line in (out / "hypervolume.csv").read_text().splitlines()[1:]]
    front = json.loads((out / "front.json").read_text())
    return {"hv1": hv[0], "hv5": hv[4], "hv": s["hypervolume"], "min_macs": min(m["macs"] for m in front) / 1e6,
            "min_latency": min(m["latency"] for m in front)}


def rows(name: str, settings: dict) -> list[str]:
    out = []
    for algorithm in ("nsga2", "random"):
        for sampling in ("uniform", "stratified"):
            r = [one(settings, algorithm, sampling, seed) for seed in SEEDS]
            mean = {k: np.mean([x[k] for x in r]) for k in r[0]}
            out.append(f"| {name} | {algorithm} | {sampling} | {mean['hv1']:.4f} | {mean['hv5']:.4f} | **{mean['hv']:.4f}** "
                       f"({min(x['hv'] for x in r):.4f}-{max(x['hv'] for x in r):.4f}) | {mean['min_macs']:.1f} M | "
                       f"{mean['min_latency']:.3f} ms |")
            print(out[-1], flush=True)
    return out


def main() -> None:
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    search.WORK = WORK  # the synthetic ofa-mbv3 predictor is written here
    body = rows("cifar-mbv3 @32, shipped predictor", {"space": "cifar-mbv3", "table": str(C10_TABLE), "predictor": "cifar10",
                                                       "resolutions": [32]})
    body += rows("ofa-mbv3 @160/224, synthetic top-1", {"space": "ofa-mbv3", "table": str(OFA_TABLE), "predictor": str(ofa_predictor())})
    text = "\n".join([
        f"NSGA-II and random search, population {POP} x {GENS} generations ({POP * GENS:,} evaluations), objectives top-1, "
        "latency (the shipped table of this CPU) and MACs; hypervolume normalised by the fixed bounds each run records, "
        f"mean of seeds {SEEDS.start}-{SEEDS.stop - 1} (range in brackets).  uniform: every gene uniform; stratified: each "
        "arch draws a size level and every gene follows it (`--sampling`, the default since 2026-12-03).  Smallest MACs "
        "and latency: the final front's smallest, mean over seeds.", "",
        "| space | algorithm | sampling | HV, generation 1 | HV, generation 5 | HV, final | smallest MACs on the front | "
        "lowest latency on the front |",
        "|---|---|---|---|---|---|---|---|", *body])
    update_section("Search: how the first archs are drawn", text, "python benchmarks/search_sampling.py", machine())


if __name__ == "__main__":
    main()
