"""What caching resized evaluation batches saves: the evaluator's cache on, or off (batches resized again per arch).

    python benchmarks/eval_cache.py      # ~5 min on 2 cores; needs no dataset

The evaluator keeps each resolution's resized calibration and held-out batches (float32) across archs, up to
``edgenas.evaluate.CACHE_MEMORY``; beyond it, it resizes them again for every arch.  This times evaluations of
ofa-mbv3 subnets at 224 px (BN recalibrated on 500 images, 898 held-out images: digits, upscaled) with the
cache filled beforehand and with no cache, alternating, and tiny at 24 px, where a forward is cheapest next to
the resizing.
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
from _report import machine, update_section

import edgenas.evaluate
from edgenas import Supernet, get_space
from edgenas.data import load_data
from edgenas.evaluate import Evaluator

CASES = (("ofa-mbv3", 224), ("tiny", 24))


def main() -> None:
    data = load_data("digits", val_fraction=0.5)
    rows, budget = [], edgenas.evaluate.CACHE_MEMORY
    for name, r in CASES:
        space = get_space(name)
        net, rng = Supernet(name, num_classes=10, seed=0), np.random.default_rng(0)
        archs = {"smallest": space.min_arch(r), "largest": space.max_arch(r),
                 **{f"random-{i}": replace(space.sample(rng), r=r) for i in range(2)}}
        evs = {"cached": Evaluator(data, calib_images=500), "resized per arch": Evaluator(data, calib_images=500)}
        edgenas.evaluate.CACHE_MEMORY = budget
        evs["cached"].top1(net, space.min_arch(r))  # fills the cache for r
        took: dict[str, float] = {k: 0.0 for k in evs}
        for a in archs.values():
            for k, ev in evs.items():
                edgenas.evaluate.CACHE_MEMORY = budget if k == "cached" else 0
                t = time.perf_counter()
                ev.top1(net, a)
                took[k] += time.perf_counter() - t
        edgenas.evaluate.CACHE_MEMORY = budget
        mb = evs["cached"]._cached_bytes / 1e6
        rows.append(f"| {name} | {r} | {len(archs)} | {took['cached']:.2f} s | {took['resized per arch']:.2f} s | "
                    f"{took['resized per arch'] / took['cached']:.3f}x | {mb:,.0f} MB |")
        print(rows[-1], flush=True)
    body = "\n".join([
        f"digits upscaled, BN recalibrated on 500 images, {len(data.val)} held-out images; untrained supernets (the time does "
        "not depend on the weights); the same archs evaluated with the cache filled beforehand and with batches resized "
        "again per arch, alternating.", "",
        "| space | resolution | archs | cached | resized per arch | time ratio | cache for this resolution |",
        "|---|---|---|---|---|---|---|", *rows,
    ])
    update_section("Evaluation: cached or re-resized batches", body, "python benchmarks/eval_cache.py", machine())
    print(body)


if __name__ == "__main__":
    main()
