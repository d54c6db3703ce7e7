"""`edgenas latency recalibrate`: validation error of a table as it was and recalibrated, on the same measurements.

    python benchmarks/recalibrate.py [--tables T.json ...] [--samples 100]     # ~5 min a table

For each table (default: every shipped one measured on this machine's CPU with the local CPU
provider), a copy is recalibrated: its calibration networks measured again and its calibration
refitted.  `latency validate` then measures random subnets twice on the copy, and the original
table's predictions are scored on the same measurements: the two tables are compared on one set of
timings, so the machine's drift between them is nil.  Run it with nothing else running.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import numpy as np
from _report import machine, update_section

from edgenas.latency import LatencyTable, LocalBackend
from edgenas.latency.backends import table_backend
from edgenas.latency.recalibrate import recalibrate_table
from edgenas.latency.validate import accuracy_metrics, validate

ROOT = Path(__file__).resolve().parent.parent
WORK = Path(__file__).resolve().parent / "_work" / "recalibrate"


def tables_of_this_machine() -> list[Path]:
    here = LocalBackend().info()["cpu_model"]
    return [p for p in sorted((ROOT / "latency_tables").glob("*.json")) if not p.name.endswith(".validation.json")
            and (m := LatencyTable.read(p).meta)["cpu_model"] == here and m["provider"] == "CPUExecutionProvider"
            and m["device"].get("device") != "remote"]


def run(path: Path, samples: int) -> dict:
    copy = WORK / path.name
    shutil.copyfile(path, copy)
    rec = recalibrate_table(copy, progress=True)
    old, new = LatencyTable.load(path), LatencyTable.load(copy)
    rep = validate(new, table_backend(new.meta, copy, None), samples, WORK / f"{path.stem}.validation", passes=2, progress=True)
    sp = new.space
    X = np.stack([sp.encode(sp.arch(n["arch"])) for n in rep["networks"]])
    measured = np.array([n["measured_ms"][0] for n in rep["networks"]])
    return {"table": path.name, "drift": rec["drift"]["p50"], "before": accuracy_metrics(old.predict_batch(X), measured),
            "recalibrated": rep["overall"], "noise": rep["noise_floor"], "n_cal": rec["n_networks"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tables", nargs="+", type=Path, help="tables measured on this machine (default: the shipped ones)")
    ap.add_argument("--samples", type=int, default=100)
    args = ap.parse_args()
    tables = args.tables or tables_of_this_machine()
    if not tables:
        sys.exit("no shipped table was measured on this machine's CPU; give --tables")
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    rows = [run(Path(t), args.samples) for t in tables]
    pct = lambda m: f"{m['within_10pct']:.0%} (MAPE {m['mape']:.1%}, mean error {m['mean_error']:+.1%})"  # noqa: E731
    lines = [
        "Target: a recalibrated table validates within ±10% as often as the machine's noise floor allows, where the "
        "table as it was has drifted. Each table's copy is recalibrated, then `latency validate` measures "
        f"{args.samples} random subnets twice on it; the table as it was is scored on the same first-pass measurements.",
        "",
        "| table | networks ran x their time in the table | table as it was: within ±10% | recalibrated copy: within ±10% | noise floor: within ±10% |",
        "|---|---|---|---|---|",
        *[f"| `{r['table']}` | {r['drift']:.3f} (median of {r['n_cal']}) | {pct(r['before'])} | {pct(r['recalibrated'])} | "
          f"{r['noise']['within_10pct']:.0%} |" for r in rows],
    ]
    command = "python benchmarks/recalibrate.py" + (" --tables " + " ".join(map(str, args.tables)) if args.tables else "") + \
        (f" --samples {args.samples}" if args.samples != 100 else "")
    update_section("Latency recalibration", "\n".join(lines), command, machine())
    print("\n".join(lines))


if __name__ == "__main__":
    main()
