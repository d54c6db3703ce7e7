"""How many whole networks a table's calibration needs: its error on networks it was not fitted on, by count.

    python benchmarks/calibration_networks.py      # seconds; reads the shipped tables, times nothing

For every table in ``latency_tables/`` with 30 calibration networks: 300 random draws of k fitting networks and
5 held-out networks from the others (k = 8 ... 25), the calibration fitted on the k (``LatencyTable.fit_calibration``)
and its error on the 5.  Each network's time is one measurement, so the errors include its noise.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from _report import machine, update_section

from edgenas.errors import EdgeNASError
from edgenas.latency.table import NETWORK_PREFIX, LatencyTable

ROOT = Path(__file__).resolve().parent.parent
COUNTS = (8, 12, 16, 20, 25)
HELD_OUT, DRAWS = 5, 300


def heldout_errors(table: LatencyTable, fit: int, held: int, draws: int = DRAWS, seed: int = 0) -> np.ndarray:
    """|predicted / measured - 1| on ``held`` calibration networks, the calibration fitted on ``fit`` others, ``draws`` times."""
    archs = table.calibration_archs()
    X = np.stack([table.space.encode(a) for a in archs])
    y = np.array([table.ms(table.entries[f"{NETWORK_PREFIX}{i}"]) for i in range(len(archs))])
    g, out = np.random.default_rng(seed), []
    for _ in range(draws):
        idx = g.permutation(len(archs))
        table.fit_calibration(X[idx[:fit]], y[idx[:fit]])
        out.append(table.predict_batch(X[idx[fit : fit + held]]) / y[idx[fit : fit + held]] - 1)
    return np.abs(np.concatenate(out))


def main() -> None:
    rows, pooled = [], {k: [] for k in COUNTS}
    for path in sorted((ROOT / "latency_tables").glob("*.json")):
        try:
            table = LatencyTable.read(path)
        except EdgeNASError:  # a validation report beside the tables
            continue
        if len(table.calibration_archs()) < HELD_OUT + max(COUNTS):
            continue
        cells = []
        for k in COUNTS:
            e = heldout_errors(table, k, HELD_OUT, seed=k)
            pooled[k].append(e)
            cells.append(f"{100 * e.mean():.1f}%")
        rows.append(f"| {path.stem} | " + " | ".join(cells) + " |")
    means = [np.concatenate(pooled[k]) for k in COUNTS]
    body = (f"Every shipped table with 30 calibration networks ({len(rows)}): the calibration fitted on k of its networks, "
            f"its mean error on {HELD_OUT} others ({DRAWS} random draws a table and count).\n\n"
            "| table | " + " | ".join(f"k = {k}" for k in COUNTS) + " |\n|---|" + "---|" * len(COUNTS) + "\n" + "\n".join(rows)
            + "\n| **all tables, mean** | " + " | ".join(f"**{100 * e.mean():.2f}%**" for e in means) + " |"
            + "\n| **all tables, within ±10%** | " + " | ".join(f"**{100 * (e <= 0.1).mean():.1f}%**" for e in means) + " |")
    update_section("Latency: calibration networks a table needs", body, "python benchmarks/calibration_networks.py", machine())
    print(body)


if __name__ == "__main__":
    main()
