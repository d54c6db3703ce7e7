"""Build the shipped latency tables for this machine and validate them end to end.

    python benchmarks/latency_tables.py                  # all three tables (~20 min on 2 cores)
    python benchmarks/latency_tables.py --only cifar     # one of: ofa, cifar

Writes latency_tables/<machine>_<space>_<provider>-t1_fp32.json with its validation report and
plot beside it, and the 'Latency tables' section of BENCHMARKS.md.  The profiling time is the
wall time of a fresh `edgenas profile` of one table; predictor throughput is vectorized.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

import numpy as np
from _report import machine, update_section

from edgenas.agent import cpu_model
from edgenas.latency import LatencyTable, LocalBackend
from edgenas.latency.profile import profile
from edgenas.latency.validate import validate

ROOT = Path(__file__).resolve().parent.parent
JOBS = {
    "ofa": ("ofa-mbv3", [160, 224], 200),  # 100 subnets at each resolution
    "cifar": ("cifar-mbv3", [32], 100),
}


def slug() -> str:
    return re.sub(r"[^a-z0-9]+", "-", cpu_model().lower()).strip("-")


def run(job: str) -> dict:
    space, resolutions, samples = JOBS[job]
    out = ROOT / "latency_tables" / f"{slug()}_{space}_cpu-t1_fp32.json"
    out.unlink(missing_ok=True)
    t = time.perf_counter()
    table, _ = profile(space, resolutions, LocalBackend("cpu", 1), out)
    seconds = time.perf_counter() - t
    table = LatencyTable.load(out, space)
    vecs = table.space.sample_vectors(np.random.default_rng(0), 100_000)
    vecs[:, -1] = table.space.resolutions.index(resolutions[0])
    t = time.perf_counter()
    table.predict_batch(vecs)
    throughput = len(vecs) / (time.perf_counter() - t)
    rep = validate(table, LocalBackend("cpu", 1), samples, str(out).removesuffix(".json") + ".validation")
    return {"space": space, "resolutions": resolutions, "table": out.name, "entries": len(table.entries),
            "profile_s": seconds, "per_resolution_s": seconds / len(resolutions), "throughput": throughput, "report": rep}


def fmt(m: dict) -> str:
    return f"{m['within_5pct']:.0%} | {m['within_10pct']:.0%} | {m['mape']:.1%} | {m['spearman']:.3f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", choices=sorted(JOBS))
    args = ap.parse_args()
    results = [run(j) for j in ([args.only] if args.only else list(JOBS))]
    store = Path(__file__).with_name("latency_tables.results.json")
    saved = json.loads(store.read_text()) if store.exists() else {}
    for r in results:  # one entry per table: each machine's tables stand beside the others'
        saved[r["table"]] = {k: v for k, v in r.items() if k != "report"} | {"machine": ", ".join(machine().split(", ")[:2]),
                                                                              "date": time.strftime("%Y-%m-%d")} | {
            "overall": r["report"]["overall"], "uncalibrated": r["report"]["uncalibrated"],
            "by_resolution": r["report"]["by_resolution"], "noise_floor": r["report"]["noise_floor"],
            "calibration": r["report"]["calibration"], "drift": r["report"]["drift"],
        }
    store.write_text(json.dumps(saved, indent=2) + "\n")

    lines = [
        "Targets: ofa-mbv3 at 160 and 224 >= 95% within ±10%, >= 85% within ±5%, Spearman >= 0.98; cifar-mbv3 at 32",
        ">= 90% within ±10%; a full ofa-mbv3 table at one resolution profiled in <= 3 min; >= 100,000 predictions/s.",
        "ONNX Runtime CPU provider, 1 thread, batch 1, fp32, graph optimization level all; every time (blocks, whole",
        "networks) is the statistic the table's protocol names (`min`, the fastest timed run, unless stated).",
        "",
        "Each machine's tables are profiled and validated on that machine; the Machine line above names the latest run.",
        "",
        "| table | machine | date | entries | profile time (per resolution) | predictions/s |",
        "|---|---|---|---|---|---|",
    ]
    for s in saved.values():
        lines.append(f"| `{s['table']}` | {s['machine']} | {s['date']} | {s['entries']} | {s['profile_s']:.0f} s ({s['per_resolution_s']:.0f} s) "
                     f"| {s['throughput']:,.0f} |")
    lines += ["", "| machine | space, resolution | networks | within ±5% | within ±10% | MAPE | Spearman |", "|---|---|---|---|---|---|---|"]
    for s in saved.values():
        cpu = s["machine"].split(",")[0]
        for r, m in s["by_resolution"].items():
            lines.append(f"| {cpu} | {s['space']} @ {r} (calibrated) | {m['n']} | {fmt(m)} |")
        lines.append(f"| {cpu} | {s['space']} all, uncalibrated sum of blocks | {s['uncalibrated']['n']} | {fmt(s['uncalibrated'])} |")
        nf = s["noise_floor"]
        lines.append(f"| {cpu} | {s['space']} noise floor: same networks measured twice | {nf['n']} | {fmt(nf)} |")
    lines += ["", "Device drift (the table's calibration networks re-measured during validation, ratio to their profiling-time "
              "median): " + "; ".join(f"`{s['table']}`: median {s['drift']['p50']:.3f}, 5-95% {s['drift']['p5']:.3f}..{s['drift']['p95']:.3f}"
                                      for s in saved.values() if s.get("drift", {}).get("n"))]
    older = [s["table"] for s in saved.values() if not s.get("drift", {}).get("n")]
    if older:
        lines += ["", f"{', '.join(older)}: profiled by an earlier version of this script, in which the calibration networks "
                  "were measured right after the blocks rather than interleaved with them (so no drift was recorded)."]
    lines += ["", "Calibration (fitted on 30 other random networks measured end to end, stored in each table): " + "; ".join(
        f"`{s['table']}`: measured = {s['calibration']['scale']:.3f} x raw + {s['calibration']['per_mparam']:.3f} ms/Mparam "
        f"x params + {s['calibration']['offset_ms']:.3f} ms" for s in saved.values())]
    update_section("Latency tables", "\n".join(lines), "python benchmarks/latency_tables.py", machine())
    print("\n".join(lines))


if __name__ == "__main__":
    main()
