"""What int8 calibration costs and what it buys: export's number of calibration images, and the ranges
latency tables calibrate their int8 models with.

    python benchmarks/int8_calibration.py [--data imagefolder:PATH/train.zip] [--subnets 6] [--counts 256 128 64]

1. Export: the shipped CIFAR-10 supernet's subnets quantized as ``export --int8`` does (99.99th-percentile
   activation ranges) from each number of training images: int8 top-1 change on the held-out split and
   seconds to quantize.  ONNX Runtime's percentile histograms sort every batch after the first, so the time
   grows with the images.
2. Latency tables: random cifar-mbv3 networks at 32x32 on seeded noise, quantized with percentile and with
   min/max ranges: seconds each and whether the two graphs are the same (they must be: a table times the graph
   export makes, and only its scales differ).

Without --data the shipped 1,000 held-out images score the models; with the CIFAR-10 training zip, its 5,000.
Timings are this CPU's, one process; run it alone.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
from _report import machine, per_cpu, update_section

from edgenas.data import checkpoint_data
from edgenas.deploy import calibration_batches, export_subnet, onnx_top1
from edgenas.latency.profile import network_model
from edgenas.quantize import CALIBRATION_IMAGES, quantize_int8
from edgenas.space import get_space
from edgenas.supernet import read_checkpoint


def _timed(fn, *args, **kwargs) -> tuple[bytes, float]:
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def _graph(model: bytes) -> tuple[list, list]:
    g = onnx.load_from_string(model).graph
    return [(n.op_type, list(n.input), list(n.output)) for n in g.node], sorted((t.name, t.data_type, tuple(t.dims)) for t in g.initializer)


def export_rows(space, split, data: str | None, n: int, counts: list[int]) -> list[tuple[str, float, dict[int, tuple[float, float]]]]:
    rng = np.random.default_rng(3)
    archs = {"largest": space.max_arch(32), "smallest": space.min_arch(32),
             **{f"random-{i}": space.arch({**space.sample(rng).to_dict(), "r": 32}) for i in range(n - 2)}}
    calib = {c: calibration_batches(split, 32, c) for c in counts}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, arch in archs.items():
            fp32 = Path(tmp) / f"{name}.onnx"
            export_subnet(space, arch, fp32, checkpoint="cifar10", data=data)
            base = onnx_top1(fp32, split, 32)
            cells = {}
            for c in counts:
                q, seconds = _timed(quantize_int8, fp32.read_bytes(), calib[c])
                path = Path(tmp) / f"{name}.{c}.onnx"
                path.write_bytes(q)
                cells[c] = (100 * (onnx_top1(path, split, 32) - base), seconds)
            rows.append((name, base, cells))
            print(name, f"{base:.4f}", {c: (round(d, 2), round(s, 1)) for c, (d, s) in cells.items()}, flush=True)
    return rows


def table_rows(space, n: int) -> list[tuple[float, float, bool]]:
    rows = []
    for seed in range(n):
        arch = space.arch({**space.sample(np.random.default_rng(seed)).to_dict(), "r": 32})
        fp32 = network_model(space, arch)
        g = np.random.default_rng(seed)
        noise = [g.standard_normal((1, 3, 32, 32)).astype(np.float32) for _ in range(4)]
        pct, t_pct = _timed(quantize_int8, fp32, noise)
        mm, t_mm = _timed(quantize_int8, fp32, noise, percentile=None)
        rows.append((t_pct, t_mm, _graph(pct) == _graph(mm)))
        print(f"network {seed}: percentile {t_pct:.2f} s, min/max {t_mm:.2f} s, same graph {rows[-1][2]}", flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", help="the CIFAR-10 training data at its path here (default: the shipped sample)")
    ap.add_argument("--subnets", type=int, default=6)
    ap.add_argument("--counts", type=int, nargs="+", default=[256, 128, 64])
    ap.add_argument("--networks", type=int, default=8, help="random networks for the latency-table part")
    args = ap.parse_args(argv)
    space = get_space("cifar-mbv3")
    split = checkpoint_data(read_checkpoint("cifar10")["data"], args.data)
    rows = export_rows(space, split, args.data, args.subnets, args.counts)
    nets = table_rows(space, args.networks)

    head = " | ".join(f"{c} images: change (points) | seconds" for c in args.counts)
    lines = [f"| subnet | fp32 top-1 | {head} |", "|---|---|" + "---|---|" * len(args.counts)]
    lines += [f"| {name} | {base:.4f} | " + " | ".join(f"{cells[c][0]:+.2f} | {cells[c][1]:.1f}" for c in args.counts) + " |"
              for name, base, cells in rows]
    summary = "; ".join(f"{c} images: mean change {np.mean([r[2][c][0] for r in rows]):+.2f} points (worst "
                        f"{min(r[2][c][0] for r in rows):+.2f}), {sum(r[2][c][1] for r in rows):.0f} s in all" for c in args.counts)
    pct, mm = np.array([r[0] for r in nets]), np.array([r[1] for r in nets])
    body = f"""1. Export (`export --int8`, percentile ranges, per-channel weights), the shipped `cifar10` supernet's subnets at 32x32,
BN recalibrated; top-1 on {len(split.val):,} held-out images; seconds: `quantize_int8` alone.  The default is
{CALIBRATION_IMAGES} images.

{chr(10).join(lines)}

{summary}.

2. Latency-table int8 models (seeded noise, 4 batches of 1), {len(nets)} random cifar-mbv3 networks at 32x32: percentile
ranges {pct.min():.2f}-{pct.max():.2f} s (total {pct.sum():.1f} s), min/max {mm.min():.2f}-{mm.max():.2f} s (total {mm.sum():.1f} s);
the same graph in {sum(r[2] for r in nets)} of {len(nets)} (tables calibrate with min/max).
"""
    update_section(per_cpu("int8 calibration cost"), body, "python benchmarks/int8_calibration.py " + " ".join(argv or sys.argv[1:]), machine())
    return 0


if __name__ == "__main__":
    sys.exit(main())
