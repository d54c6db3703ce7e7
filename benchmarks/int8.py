"""int8 vs fp32: latency of the largest ofa-mbv3 subnet at 224 on this CPU, accuracy on a trained supernet.

    python benchmarks/int8.py     # ~2 min; the accuracy part uses benchmarks/train_cpu.py's run

Latency: both models measured in one interleaved run (ONNX Runtime CPU, 1 thread, batch 1),
so the ratio does not depend on the machine's drift.  Accuracy: largest, smallest and three random
subnets of the tiny supernet trained on digits, fp32 vs static QDQ int8 calibrated on 256
training images, on the held-out digits.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from _report import machine, update_section

from edgenas import agent, get_space
from edgenas.deploy import export_subnet
from edgenas.latency.profile import network_model
from edgenas.quantize import quantize_int8

WORK = Path(__file__).resolve().parent / "_work" / "int8"
CKPT = Path(__file__).resolve().parent / "_work" / "train_cpu" / "run" / "latest.pt"


def variants(fp32: bytes, calib: list) -> dict[str, bytes]:
    """Alternatives to edgenas's QDQ per-channel: ORT pre-processing, per-tensor, QOperator, Conv/Gemm only."""
    import logging
    import tempfile

    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    logging.getLogger().setLevel(logging.ERROR)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(calib)

        def get_next(self):
            b = next(self.it, None)
            return None if b is None else {"input": b}

    tmp = Path(tempfile.mkdtemp(dir=WORK))
    (tmp / "f.onnx").write_bytes(fp32)
    quant_pre_process(str(tmp / "f.onnx"), str(tmp / "pre.onnx"))
    base = dict(activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    settings = {
        "int8 QDQ per-channel after quant_pre_process": dict(quant_format=QuantFormat.QDQ, per_channel=True),
        "int8 QDQ per-tensor after quant_pre_process": dict(quant_format=QuantFormat.QDQ, per_channel=False),
        "int8 QOperator per-channel after quant_pre_process": dict(quant_format=QuantFormat.QOperator, per_channel=True),
        "int8 QDQ Conv/Gemm only after quant_pre_process": dict(quant_format=QuantFormat.QDQ, per_channel=True,
                                                               op_types_to_quantize=["Conv", "Gemm"]),
    }
    out = {}
    for i, (name, kw) in enumerate(settings.items()):
        quantize_static(str(tmp / "pre.onnx"), str(tmp / f"{i}.onnx"), Reader(), **base, **kw)
        out[name] = (tmp / f"{i}.onnx").read_bytes()
    return out


def main() -> None:
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    sp = get_space("ofa-mbv3")
    arch = sp.max_arch(224)
    fp32 = network_model(sp, arch)
    g = np.random.default_rng(0)
    calib = [g.standard_normal((1, 3, 224, 224)).astype(np.float32) for _ in range(8)]
    models = {"fp32": fp32, "int8": quantize_int8(fp32, calib), **variants(fp32, calib)}
    res = agent.measure(models, protocol={"rounds": 10, "runs": 15})
    ratio = res["fp32"]["median_ms"] / res["int8"]["median_ms"]

    tiny = get_space("tiny")
    rows = []
    for name, a in [("largest", tiny.max_arch(24)), ("smallest", tiny.min_arch(24))] + [
            (f"random {i}", tiny.decode(np.r_[tiny.encode(tiny.sample(np.random.default_rng(i)))[:-1], 2])) for i in range(3)]:
        r = export_subnet(tiny, a, WORK / f"{name.replace(' ', '_')}.onnx", checkpoint=str(CKPT), int8=True)
        rows.append((name, r["top1_fp32"], r["top1_int8"], r["n"]))
    lines = [
        "Targets: int8 >= 1.5x faster than fp32 for the largest ofa-mbv3 subnet at 224; accuracy drop <= 1 point.",
        "",
        f"Largest ofa-mbv3 subnet at 224, batch 1, 1 thread, measured interleaved in one run: fp32 "
        f"**{res['fp32']['median_ms']:.2f} ms**, int8 (QDQ, per-channel, as `edgenas export --int8`) "
        f"**{res['int8']['median_ms']:.2f} ms**: **{ratio:.2f}x** (target missed on this CPU, which has AVX512-VNNI).",
        "",
        "Other ORT quantization settings tried in the same run (none is faster; edgenas ships the first):",
        "",
        "| variant | median ms | speed-up vs fp32 |",
        "|---|---|---|",
        *[f"| {k} | {v['median_ms']:.2f} | {res['fp32']['median_ms'] / v['median_ms']:.2f}x |" for k, v in res.items() if k != "fp32"],
        "",
        "The network is depthwise-heavy (7x7 depthwise at high resolution) with h-swish and squeeze-excite: ORT's int8",
        "kernels gain little on the depthwise convs, and the Q/DQ pairs around the float h-swish/SE ops cost time.",
        "",
        "Accuracy, tiny supernet trained on digits (held-out 179 images), int8 calibrated on 256 training images:",
        "",
        "| subnet | top-1 fp32 | top-1 int8 | change (points) |",
        "|---|---|---|---|",
        *[f"| {n} | {a:.4f} | {b:.4f} | {100 * (b - a):+.2f} |" for n, a, b, _ in rows],
        "",
        "No trained ofa-mbv3 or CIFAR-10 supernet exists yet (that needs a GPU), so the accuracy drop is measured on",
        "digits only.",
    ]
    update_section("int8 export", "\n".join(lines), "python benchmarks/int8.py", machine())
    print("\n".join(lines))


if __name__ == "__main__":
    main()
