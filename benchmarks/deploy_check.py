"""`edgenas deploy check` on ofa-mbv3 subnets against the shipped table: measured vs predicted latency.

    python benchmarks/deploy_check.py      # ~2 min

Six random subnets (three at 160, three at 224, seeded random weights: latency does not depend on
them) are exported with `edgenas export` and measured on this CPU with the table's protocol, against
the shipped table made on this CPU model.  Each check also re-measures four of the table's calibration
networks beside the model: how much slower or faster this machine runs now than when it was profiled,
and the error with that drift taken out (the table's own).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from _report import machine, update_section

from edgenas import get_space
from edgenas.deploy import export_subnet
from edgenas.latency import LatencyTable, LocalBackend

ROOT = Path(__file__).resolve().parent.parent
WORK = Path(__file__).resolve().parent / "_work" / "deploy_check"


def main() -> None:
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    sp = get_space("ofa-mbv3")
    here = LocalBackend().info()["cpu_model"]
    tables = {p: LatencyTable.load(p) for p in sorted((ROOT / "latency_tables").glob("*_ofa-mbv3_cpu-t1_fp32.json"))}
    table_path = next((p for p, t in tables.items() if t.meta["cpu_model"] == here), next(iter(tables)))
    rng = np.random.default_rng(7)
    rows = []
    for i in range(6):
        v = sp.sample_vectors(rng, 1)[0]
        v[-1] = sp.resolutions.index(160 if i < 3 else 224)
        arch = sp.decode(v)
        r = export_subnet(sp, arch, WORK / f"m{i}.onnx", check_tables={"fp32": str(table_path)}, backend=LocalBackend())
        c = r["check"][0]
        rows.append((arch.r, r["macs"] / 1e6, c["measured_ms"], c["predicted_ms"], c["error"], c["drift"]["ratio"],
                     c["drift_corrected_error"], r["max_abs_diff"]))
    errs, fixed = np.abs([r[4] for r in rows]), np.abs([r[6] for r in rows])
    lines = [
        "Target: the measured latency of an exported model within ±10% of the table's prediction; export parity <= 1e-4.",
        "",
        f"Table: `{table_path.name}` (profiled {tables[table_path].meta['date'][:10]}). ONNX Runtime CPU, 1 thread, batch 1. "
        "Drift: this machine's time for the table's calibration networks now over then (median of 4, measured with the model).",
        "",
        "| resolution | MMACs | measured ms | predicted ms | error | drift | error corrected for drift | ORT vs PyTorch max abs diff |",
        "|---|---|---|---|---|---|---|---|",
        *[f"| {r} | {m:.0f} | {a:.3f} | {p:.3f} | {100 * e:+.1f}% | {dr:.3f}x | {100 * f:+.1f}% | {d:.1e} |" for r, m, a, p, e, dr, f, d in rows],
        "",
        f"{int((errs <= 0.10).sum())}/{len(rows)} within ±10%, {int((errs <= 0.05).sum())}/{len(rows)} within ±5%; "
        f"corrected for drift: {int((fixed <= 0.10).sum())}/{len(rows)} and {int((fixed <= 0.05).sum())}/{len(rows)}.",
    ]
    update_section("Deploy check", "\n".join(lines), "python benchmarks/deploy_check.py", machine())
    print("\n".join(lines))


if __name__ == "__main__":
    main()
