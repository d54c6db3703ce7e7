"""How long ``edgenas quickstart --cifar10`` takes on this machine, and how close its latency predictions land.

    python benchmarks/quickstart_time.py [--calibrate N ...]     # ~3-4 min a run on 2 cores; run alone (it times things)

Runs the command as a user would (a fresh process, a fresh folder; its default calibration unless ``--calibrate``
gives counts to compare), and reports its wall-clock seconds, the two profiles' seconds, each exported model's
measured and predicted latency, error and drift-corrected error, and the picked model's top-1 and int8 speed-up.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _report import machine, per_cpu, update_section


def one(calibrate: int | None, folder: Path) -> str:
    out = folder / f"qs-{calibrate}"
    cmd = [sys.executable, "-m", "edgenas.cli", "quickstart", "--cifar10", "--out", str(out), "--json"]
    cmd += [] if calibrate is None else ["--calibrate", str(calibrate)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - start
    res = json.loads(proc.stdout)
    profiled = [json.loads(Path(res["tables"][p]).read_text())["meta"]["profile_seconds"] for p in ("fp32", "int8")]
    nets = len(json.loads(Path(res["tables"]["fp32"]).read_text())["meta"]["calibration_networks"])
    cells = [f"{m['measured_ms']:.2f} / {m['predicted_ms']:.2f} ms, {100 * m['error']:+.1f}% ({100 * m['drift_corrected_error']:+.1f}%)"
             for m in res["models"].values()]
    fp32, int8 = res["models"]["fp32"], res["models"]["int8"]
    picked = f"{fp32['top1']:.3f} / {int8['top1']:.3f}, {fp32['measured_ms'] / int8['measured_ms']:.2f}x"
    row = f"| {nets} | {seconds:.0f} | {profiled[0]:.0f} / {profiled[1]:.0f} | " + " | ".join(cells) + f" | {picked} | {res['deploy']} |"
    print(row, flush=True)
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--calibrate", type=int, nargs="*", default=[None], help="calibration networks a table (default: the command's)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [one(c, Path(tmp)) for c in args.calibrate]
    body = ("`edgenas quickstart --cifar10` in a fresh process and folder: wall-clock seconds of the whole command, the fp32 "
            "and int8 profiles' seconds, and each model's measured / predicted latency, error (drift-corrected error in "
            "brackets: the tables' calibration networks re-measured beside the model).\n\n"
            "| calibration networks a table | seconds | profiles s (fp32 / int8) | fp32 | int8 | "
            "picked model: top-1 fp32 / int8 (1,000 shipped held-out images), int8 speed-up | deploys |\n"
            "|---|---|---|---|---|---|---|\n" + "\n".join(rows))
    flags = "" if args.calibrate == [None] else " --calibrate " + " ".join(map(str, args.calibrate))
    update_section(per_cpu("Quickstart --cifar10: time and latency error"), body, f"python benchmarks/quickstart_time.py{flags}",
                   machine())


if __name__ == "__main__":
    main()
