"""What handing ONNX Runtime's quantizer the Conv weights' per-channel scales saves on the int8 models a latency
table builds (its quantizer computes them channel by channel in Python), and that the models stay the same to the byte.

    python benchmarks/int8_weight_scales.py [--space cifar-mbv3] [--resolution 32] [--networks 16]   # ~4 min on 2 cores

Builds every model of an int8 table of ``--space`` at ``--resolution`` (its blocks and ``--networks`` calibration
networks, as ``edgenas profile --precision int8 --calibrate N`` does), each twice in a row: once with the scales
handed over (edgenas's default), once with the quantizer computing them itself; which goes first alternates from
model to model, so both see the same machine.  Run it alone: the ratio is what it reports.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from _report import machine, per_cpu, update_section

import edgenas.quantize as quantize
from edgenas.latency.profile import TableModels, _random_arch
from edgenas.space import get_space


def build_both(models: TableModels, key: str, first_fast: bool) -> tuple[float, float, bool]:
    """Seconds to build ``key`` with the scales handed over and without, and whether the two models are equal."""
    ours = quantize._conv_weight_scales
    out: dict[bool, tuple[bytes, float]] = {}
    try:
        for fast in (first_fast, not first_fast):
            quantize._conv_weight_scales = ours if fast else (lambda *args: {})  # type: ignore[assignment]
            t = time.perf_counter()
            model = models(key)
            out[fast] = (model, time.perf_counter() - t)
    finally:
        quantize._conv_weight_scales = ours
    return out[True][1], out[False][1], out[True][0] == out[False][0]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--space", default="cifar-mbv3")
    ap.add_argument("--resolution", type=int, default=32)
    ap.add_argument("--networks", type=int, default=16, help="calibration networks (the quickstart's number)")
    args = ap.parse_args(argv)
    space = get_space(args.space)
    rng = np.random.default_rng(1)
    calib = tuple(_random_arch(space, [args.resolution], rng, i) for i in range(args.networks))
    models = TableModels(space, (args.resolution,), space.num_classes, "int8", 0, calib)
    keys = {"blocks": list(models.blocks), "calibration networks": [f"network:{i}" for i in range(args.networks)]}
    rows, same, n = [], 0, 0
    for kind, ks in keys.items():
        fast, slow = [], []
        for i, key in enumerate(ks):
            f, s, equal = build_both(models, key, first_fast=i % 2 == 0)
            fast.append(f)
            slow.append(s)
            same, n = same + equal, n + 1
        rows.append(f"| {kind} | {len(ks)} | {sum(slow):.1f} | {sum(fast):.1f} | {sum(slow) / sum(fast):.2f}x |")
        print(rows[-1], flush=True)
    body = "\n".join([
        f"Every model of an int8 `{args.space}` table at {args.resolution} (its blocks and {args.networks} calibration networks, "
        "seeded noise, min/max ranges, per-channel int8 weights), built twice in a row, alternating which goes first: "
        "seconds to build (export and quantize) with the quantizer computing the Conv weights' per-channel scales itself, "
        "and with edgenas handing them over (`TensorQuantOverrides`, the default).", "",
        "| models | count | quantizer computes the scales, s | scales handed over, s | faster |", "|---|---|---|---|---|", *rows, "",
        f"The two builds are the same bytes for {same} of {n} models."])
    command = " ".join(["python benchmarks/int8_weight_scales.py", *(argv or sys.argv[1:])])
    update_section(per_cpu(f"int8 weight scales: {args.space} at {args.resolution}"), body, command, machine())
    return 0 if same == n else 1


if __name__ == "__main__":
    sys.exit(main())
