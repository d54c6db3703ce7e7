"""int8 latency tables (and the fp32 tables of the -lite, -mixed and -width spaces) for this CPU, validated end to end.

    python benchmarks/int8_tables.py                          # ~25 min on 2 cores; run alone (it times things)
    python benchmarks/int8_tables.py --only ofa-mbv3-lite:fp32  # one table again (rows of the others are kept)

Profiles each table with `edgenas profile` (1 thread, batch 1), then measures 40 random subnets
end to end twice (`latency validate`).  'drift-corrected' scales the table by the median ratio of
its calibration networks re-measured now to when profiled: it removes how much this shared
machine drifted between profiling and validation, which no table can predict.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

from _report import machine, update_section

from edgenas.agent import cpu_model
from edgenas.latency import LocalBackend
from edgenas.latency.profile import profile
from edgenas.latency.validate import validate

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "int8_tables.results.json"
JOBS = [("cifar-mbv3-lite", 32, "fp32"), ("cifar-mbv3-lite", 32, "int8"), ("ofa-mbv3-lite", 224, "fp32"),
        ("ofa-mbv3-lite", 224, "int8"), ("cifar-mbv3", 32, "int8"), ("ofa-mbv3", 224, "int8"),
        ("cifar-mbv3-mixed", 32, "fp32"), ("cifar-mbv3-mixed", 32, "int8"), ("cifar-mbv3-width", 32, "fp32"),
        ("cifar-mbv3-width", 32, "int8")]


def slug() -> str:
    return re.sub(r"[^a-z0-9]+", "-", cpu_model().lower()).strip("-")


def fmt(m: dict | None) -> str:
    return "-" if m is None else f"{m['within_5pct']:.0%} / {m['within_10pct']:.0%} (MAPE {m['mape']:.1%})"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", nargs="+", metavar="SPACE:PRECISION")
    only = ap.parse_args().only
    saved = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    for space, r, precision in JOBS:
        if only and f"{space}:{precision}" not in only:
            continue
        out = ROOT / "latency_tables" / f"{slug()}_{space}_cpu-t1_{precision}.json"
        if out.exists() and "_r" not in out.stem:
            out.unlink()
        t = time.perf_counter()
        table, _ = profile(space, [r], LocalBackend("cpu", 1), out, precision=precision)
        seconds = time.perf_counter() - t
        rep = validate(table, LocalBackend("cpu", 1), 40, str(out).removesuffix(".json") + ".validation")
        saved[out.name] = (f"| `{out.name}` | {space} @ {r} | {precision} | {table.int8_graph or '-'} | {len(table.entries)} | {seconds:.0f} s | "
                           f"{fmt(rep['overall'])} | {fmt(rep['drift_corrected'])} | {fmt(rep['noise_floor'])} | "
                           f"{rep['drift'].get('p50', float('nan')):.3f} | {rep['overall']['spearman']:.3f} |")
        RESULTS.write_text(json.dumps(saved, indent=1))
        print(saved[out.name], flush=True)
    rows = [saved[k] for k in sorted(saved)]
    body = "\n".join([
        "Target (issue: int8 that pays off): int8 tables with >= 95% of 40 random subnets within ±10%, drift-corrected.",
        "ONNX Runtime CPU provider, 1 thread, batch 1, graph optimization level all; int8 = static QDQ (per-channel int8",
        "weights, uint8 activations) calibrated on seeded noise. Columns: share within ±5% / ±10% of 40 random subnets",
        "measured end to end; 'noise floor' compares two measurements of the same networks; 'drift' is the median ratio",
        "of the calibration networks re-measured at validation to when profiled.  Every time is the tables' statistic,",
        "`min` (the fastest timed run; `benchmarks/latency_noise.py` says why).  A table's file name starts with the machine",
        "that profiled and validated it; 'int8 graph' is `edgenas.quantize.INT8_GRAPH` when it was profiled (1: h-swish, SE",
        "gates and pooling in float between Q/DQ pairs; 2: in int8).",
        "",
        "| table | space | precision | int8 graph | entries | profile time | ±5% / ±10% | drift-corrected | noise floor | drift | Spearman |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        *rows,
    ])
    update_section("int8 latency tables", body, "python benchmarks/int8_tables.py", machine())


if __name__ == "__main__":
    main()
