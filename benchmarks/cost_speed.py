"""Cost-model throughput: archs/s of the vectorized analytic params/MACs, and of the scalar path.

    python benchmarks/cost_speed.py            # prints a table and updates BENCHMARKS.md
"""

from __future__ import annotations

import time

import numpy as np
from _report import machine, update_section

from edgenas import get_space
from edgenas.cost import cost_model


def best_rate(fn, n: int, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return n / min(times)


def main() -> None:
    rows = []
    for name in ("ofa-mbv3", "cifar-mbv3", "tiny"):
        sp = get_space(name)
        cm = cost_model(sp)
        X = sp.sample_vectors(np.random.default_rng(0), 100_000)
        vec = best_rate(lambda cm=cm, X=X: cm.batch(X), len(X))
        archs = [sp.decode(v) for v in X[:2000]]
        scalar = best_rate(lambda cm=cm, archs=archs: [cm.stats(a) for a in archs], len(archs), repeats=3)
        rows.append(f"| {name} | {vec:,.0f} | {scalar:,.0f} |")
        print(rows[-1])
    body = "\n".join([
        "Target: >= 10,000 archs/s.",
        "",
        "| space | vectorized archs/s (batch of 100,000) | scalar `stats(arch)` archs/s |",
        "|---|---|---|",
        *rows,
    ])
    update_section("Cost model speed", body, "python benchmarks/cost_speed.py", machine())


if __name__ == "__main__":
    main()
