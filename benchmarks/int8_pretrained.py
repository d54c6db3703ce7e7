"""int8 on the shipped CIFAR-10 supernet: top-1 change and speed-up of static int8 as exported
(per-channel weights, activation ranges from the 99.99th percentiles, h-swish, SE gates and pooling
in int8) against min/max activation ranges and against the int8 graph that kept h-swish, SE gates
and pooling in float (``INT8_GRAPH`` 1), for a few subnets, on the held-out split.

    python benchmarks/int8_pretrained.py [--data imagefolder:PATH/train.zip] [--subnets 5]

Without --data the shipped 1,000 held-out images score the models; with the CIFAR-10 training zip,
its 5,000 held-out images.  Latencies: ONNX Runtime, this CPU, 1 thread, batch 1, interleaved.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
from _report import machine, update_section

from edgenas.data import checkpoint_data
from edgenas.deploy import calibration_batches, export_subnet, onnx_top1
from edgenas.latency.backends import LocalBackend
from edgenas.quantize import CALIBRATION_IMAGES, CALIBRATION_PERCENTILE, quantize_int8
from edgenas.space import get_space
from edgenas.supernet import read_checkpoint

#: the previous run, on other weights and another machine (kept: a run replaces the whole section)
EARLIER = ("The run before (AMD EPYC, 2026-11-24, the supernet's first weights, h-swish, SE gates and pooling in float): "
           "top-1 change with percentile ranges -0.2 to -0.6 points (mean -0.40), with min/max -0.4 to -1.4 (mean -0.78); "
           "1.14-1.57x faster than fp32.")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", help="the CIFAR-10 training data at its path here (default: the shipped sample)")
    ap.add_argument("--subnets", type=int, default=5)
    args = ap.parse_args(argv)
    space = get_space("cifar-mbv3")
    split = checkpoint_data(read_checkpoint("cifar10")["data"], args.data)
    rng = np.random.default_rng(3)
    archs = {"largest": space.max_arch(32), "smallest": space.min_arch(32),
             **{f"random-{i}": space.arch({**space.sample(rng).to_dict(), "r": 32}) for i in range(args.subnets - 2)}}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        calib = calibration_batches(split, 32)  # as export calibrates
        for name, arch in archs.items():
            fp32 = Path(tmp) / f"{name}.onnx"
            export_subnet(space, arch, fp32, checkpoint="cifar10", data=args.data)
            models = {"fp32": fp32.read_bytes()}
            models["percentile"] = quantize_int8(models["fp32"], calib)
            models["minmax"] = quantize_int8(models["fp32"], calib, percentile=None)
            models["islands"] = quantize_int8(models["fp32"], calib, fuse_islands=False)
            top1 = {}
            for k, blob in models.items():
                path = Path(tmp) / f"{name}.{k}.onnx"
                path.write_bytes(blob)
                top1[k] = onnx_top1(path, split, 32)
            ms = LocalBackend().measure(models, {"warmup": 10, "rounds": 5, "runs": 20, "retries": 1})
            rows.append((name, top1, {k: v["median_ms"] for k, v in ms.items()}))
            print(name, {k: round(v, 4) for k, v in top1.items()}, {k: round(v["median_ms"], 3) for k, v in ms.items()}, flush=True)
    table = "\n".join(
        f"| {n} | {t['fp32']:.4f} | {100 * (t['percentile'] - t['fp32']):+.1f} | {100 * (t['minmax'] - t['fp32']):+.1f} | "
        f"{100 * (t['islands'] - t['fp32']):+.1f} | {m['fp32']:.3f} | {m['fp32'] / m['percentile']:.2f}x | {m['fp32'] / m['minmax']:.2f}x | "
        f"{m['fp32'] / m['islands']:.2f}x |" for n, t, m in rows)
    drops = [100 * (t["percentile"] - t["fp32"]) for _, t, _ in rows]
    body = f"""The shipped `cifar10` supernet (cifar-mbv3: h-swish and squeeze-excite), subnets at 32x32, BN recalibrated,
int8 (static QDQ, per-channel int8 weights, uint8 activations) calibrated on {CALIBRATION_IMAGES} training images, activation ranges
from the {CALIBRATION_PERCENTILE}th percentiles (as `export --int8` writes it) or from min/max; top-1 on {len(split.val):,} held-out images.
"float islands": percentile ranges, but h-swish, the SE gate and the pooling left in float between Q/DQ pairs, as the
int8 graph was before (`INT8_GRAPH` 1); the others run them as int8 kernels.  Latency: ONNX Runtime, 1 thread, batch 1,
interleaved, median.

| subnet | fp32 top-1 | int8 percentile (points) | int8 min/max (points) | int8 float islands (points) | fp32 ms | speed-up: percentile | min/max | islands |
|---|---|---|---|---|---|---|---|---|
{table}

Mean top-1 change of the exported int8: {np.mean(drops):+.2f} points, worst {min(drops):+.2f} (target: a drop of at most 1
point); with min/max ranges: {np.mean([100 * (t["minmax"] - t["fp32"]) for _, t, _ in rows]):+.2f}; with float islands: \
{np.mean([100 * (t["islands"] - t["fp32"]) for _, t, _ in rows]):+.2f}.
Speed-up over fp32, geometric mean: exported int8 {np.exp(np.mean([np.log(m["fp32"] / m["percentile"]) for _, _, m in rows])):.2f}x, \
with float islands {np.exp(np.mean([np.log(m["fp32"] / m["islands"]) for _, _, m in rows])):.2f}x.

{EARLIER}
"""
    update_section("int8 on the shipped CIFAR-10 supernet", body, "python benchmarks/int8_pretrained.py " + " ".join(argv or sys.argv[1:]),
                   machine())
    return 0


if __name__ == "__main__":
    sys.exit(main())
