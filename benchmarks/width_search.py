"""Does elastic width pay off in the search?  Top-1 / MACs fronts of two supernets trained for about the same time.

    python benchmarks/width_search.py [--seeds 3] [--pop 16] [--generations 8]

Needs the runs of `python benchmarks/elastic.py --choice width` (tiny on CIFAR-10: `tiny-width`, width elastic in the
expand phases, and the separate full-width `tiny` supernet).  NSGA-II searches top-1 (from the supernet, BN
recalibrated, on the 5,000 held-out images) against MACs in each, with the same budget and seeds; the hypervolumes share
one normalisation (both spaces have the same largest subnet), so they compare directly.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np
from _report import machine, update_section

from edgenas import get_space
from edgenas.cost import stats
from edgenas.search import SearchRun, load_search_config

WORK = Path(__file__).resolve().parent / "_work"
RUNS = {"tiny (fixed widths)": ("tiny", WORK / "elastic" / "tiny-x1.5"),
        "tiny-width (elastic width)": ("tiny-width", WORK / "elastic" / "tiny-width-x1.5-expand")}
BUDGETS = (0.25, 0.5)  # of the largest subnet's MACs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--pop", type=int, default=16)
    ap.add_argument("--generations", type=int, default=8)
    args = ap.parse_args(argv)
    rows, hv = [], {}
    for label, (space, run) in RUNS.items():
        ckpt = run / "latest.pt"
        if not ckpt.is_file():
            sys.exit(f"{ckpt} is missing: run `python benchmarks/elastic.py --choice width` first")
        seconds = float((run / "seconds.txt").read_text())
        for seed in range(args.seeds):
            out = WORK / "width_search" / f"{space}-{seed}"
            shutil.rmtree(out, ignore_errors=True)
            cfg = load_search_config(None, dict(space=space, objectives=["top1", "macs"], checkpoint=str(ckpt), pop_size=args.pop,
                                                generations=args.generations, calib_images=500, baseline=False, seed=seed))
            summary = SearchRun(cfg, out, progress=False).run()
            front = json.loads((out / "front.json").read_text())
            largest = stats(space, get_space(space).max_arch()).macs
            best = [max((m["top1"] for m in front if m["macs"] <= b * largest), default=float("nan")) for b in BUDGETS]
            hv.setdefault(label, []).append(summary["hypervolume"])
            rows.append(f"| {label} | {seconds:.0f} s | {seed} | {summary['hypervolume']:.4f} | {len(front)} | "
                        + " | ".join(f"{v:.4f}" for v in best) + " |")
            print(rows[-1], flush=True)
    (a, b) = (np.array(v) for v in hv.values())
    wins = int(np.sum(b > a))
    body = f"""NSGA-II, top-1 (supernet, BN recalibrated, 5,000 held-out CIFAR-10 images) against MACs, population {args.pop} x
{args.generations} generations, same seeds, in each supernet of `benchmarks/elastic.py --choice width` (trained for the times shown).
Hypervolume on one normalisation (top-1 in [0, 1], MACs in [0, 1.05 x the largest subnet's], shared by both spaces); best
top-1 on the front under {", ".join(f"{x:.0%}" for x in BUDGETS)} of the largest subnet's MACs.

| supernet | training | seed | hypervolume | front size | {" | ".join(f"best top-1 <= {x:.0%} MACs" for x in BUDGETS)} |
|---|---|---|---|---|{"---|" * len(BUDGETS)}
{chr(10).join(rows)}

Elastic width ahead on {wins}/{len(a)} seeds (mean hypervolume {b.mean():.4f} vs {a.mean():.4f}).
"""
    update_section("Elastic width in the search", body, "python benchmarks/width_search.py " + " ".join(argv or sys.argv[1:]), machine())
    return 0


if __name__ == "__main__":
    sys.exit(main())
