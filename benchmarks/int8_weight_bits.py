"""int8 weights in 8 or 7 bits on this CPU: top-1 and speed of the shipped CIFAR-10 supernet's subnets.

    python benchmarks/int8_weight_bits.py     # ~5 min on 2 cores; run alone (it times things)

x86 CPUs without VNNI (AVX2; AVX-512 before VNNI) run ONNX Runtime's uint8 x int8 kernels with int16 partial sums,
which saturate when 8-bit weights meet large activations; 7-bit weights (`edgenas export --int8-weight-bits 7`)
cannot saturate there.  The largest, smallest and 2 random subnets are exported in fp32 and int8 both ways
(calibrated as export does: `quantize.CALIBRATION_IMAGES` training images, 256 before 2026-12-07),
top-1 on the 1,000 shipped held-out images, and the two int8 models of
each timed interleaved (`agent.measure`, one thread, batch 1).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from _report import machine, per_cpu, update_section

from edgenas import agent, get_space
from edgenas.deploy import export_subnet, saturating_cpu


def main() -> None:
    sp = get_space("cifar-mbv3")
    rng = np.random.default_rng(1)
    archs = {"largest": sp.max_arch(32), "smallest": sp.min_arch(32), **{f"random {i}": sp.sample(rng) for i in range(2)}}
    rows = ["| subnet | top-1 fp32 | int8, 8-bit weights | int8, 7-bit weights | 7-bit int8 speed over 8-bit |", "|---|---|---|---|---|"]
    drops: dict[int, list[float]] = {8: [], 7: []}
    with tempfile.TemporaryDirectory(prefix="edgenas-bits-") as tmp:
        for label, arch in archs.items():
            r = {bits: export_subnet(sp, arch, Path(tmp) / f"{bits}.onnx", checkpoint="cifar10", int8=True, time_int8=False,
                                     int8_weight_bits=bits) for bits in (8, 7)}
            ms = agent.measure({bits: Path(r[bits]["int8_path"]).read_bytes() for bits in r})
            for bits in r:
                drops[bits].append(r[bits]["top1_fp32"] - r[bits]["top1_int8"])
            rows.append(f"| {label} @ {arch.r} | {r[8]['top1_fp32']:.3f} | {r[8]['top1_int8']:.3f} | {r[7]['top1_int8']:.3f} "
                        f"| {ms[8]['min_ms'] / ms[7]['min_ms']:.2f}x |")
    features = agent.cpu_features()
    verdict = "no VNNI: 8-bit weights can saturate" if saturating_cpu(features) else "no saturation expected"
    body = "\n".join([
        f"CPU features: {' '.join(features) or 'not listed'} ({verdict}).",
        "",
        *rows,
        "",
        f"Mean int8 top-1 drop: 8-bit weights {100 * np.mean(drops[8]):.2f} points, 7-bit {100 * np.mean(drops[7]):.2f} points "
        f"(largest drop {100 * max(drops[8]):.2f} and {100 * max(drops[7]):.2f}).",
    ])
    update_section(per_cpu("int8 weight bits"), body, "python benchmarks/int8_weight_bits.py", machine())
    print(body)


if __name__ == "__main__":
    main()
