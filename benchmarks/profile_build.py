"""How long profiling a table takes, its models built in this process or in helper processes.

    python benchmarks/profile_build.py                 # ~10 min on 2 cores; run alone (it times things)

Profiles ``cifar-mbv3`` at 32 (fp32 and int8, 30 calibration networks, this CPU, the default protocol),
each precision twice, alternating one process and helpers (``edgenas.latency.build``, started after the
first chunk whatever is left), and splits each
run's seconds into timing (the backend's ``measure`` calls) and the rest (building the models: export,
int8 quantization).  Helpers never run beside a measurement, so the timing part should not change.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _report import machine, per_cpu, update_section

from edgenas.latency import LocalBackend, build
from edgenas.latency.profile import profile


class TimedBackend(LocalBackend):
    """This CPU, counting the seconds spent timing models."""

    measuring_s = 0.0

    def measure(self, models, protocol):
        t0 = time.perf_counter()
        try:
            return super().measure(models, protocol)
        finally:
            self.measuring_s += time.perf_counter() - t0


def one(precision: str, helpers: bool, calibrate: int, folder: Path) -> dict:
    build.MAX_WORKERS = 4 if helpers else 1
    build.WORTH_S = 0.0  # helpers after the first chunk, whatever is left: what they gain where they start
    backend = TimedBackend()
    out = folder / f"{precision}-{helpers}-{time.monotonic_ns()}.json"
    _, seconds = profile("cifar-mbv3", [32], backend, out, precision=precision, calibrate=calibrate, progress=False)
    row = {"precision": precision, "helpers": build.build_workers() if helpers else 0, "seconds": seconds,
           "measuring_s": backend.measuring_s, "building_s": seconds - backend.measuring_s}
    print(row, flush=True)
    return row


def main() -> None:
    default_worth_s = build.WORTH_S
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--calibrate", type=int, default=30)
    args = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for precision in ("fp32", "int8"):
                for helpers in ((False, True) if r % 2 == 0 else (True, False)):
                    rows.append(one(precision, helpers, args.calibrate, Path(tmp)))
    lines = ["| precision | models built | profile s | timing s | building s |", "|---|---|---|---|---|"]
    summary = []
    for precision in ("fp32", "int8"):
        for helpers in (False, True):
            rs = [x for x in rows if x["precision"] == precision and bool(x["helpers"]) == helpers]
            where = f"in {rs[0]['helpers']} helpers" if helpers else "in this process"
            cells = [" / ".join(f"{x[k]:.0f}" for x in rs) for k in ("seconds", "measuring_s", "building_s")]
            lines.append(f"| {precision} | {where} | " + " | ".join(cells) + " |")
        one_proc = sum(x["seconds"] for x in rows if x["precision"] == precision and not x["helpers"])
        helped = sum(x["seconds"] for x in rows if x["precision"] == precision and x["helpers"])
        summary.append(f"{precision}: {one_proc / helped:.2f}x faster with helpers")
    body = (f"cifar-mbv3 at 32, {args.calibrate} calibration networks, 1 measuring thread, {args.rounds} rounds alternating "
            "the order (figures per round). Timing: the backend's measure calls; building: the rest (export, int8 "
            f"quantization).\n\n" + "\n".join(lines) + "\n\n" + "; ".join(summary) + " (sums over the rounds). The helper rows "
            "start helpers after the first chunk whatever is left; a profile starts them only where the models left would "
            f"take this process over {default_worth_s:.0f} s to build.")
    update_section(per_cpu("Profiling: models built in helper processes"), body, "python benchmarks/profile_build.py", machine())


if __name__ == "__main__":
    main()
