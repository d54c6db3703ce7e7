"""int8 that pays off: every Conv/Gemm becomes an int8 kernel after ONNX Runtime's optimizer (but the
3-channel stem, slower in int8), and the quantization-friendly ``-lite`` spaces leave nothing else but
the pooling in float."""

from __future__ import annotations

import collections

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from edgenas import get_space
from edgenas.deploy import int8_warnings
from edgenas.latency.profile import network_model
from edgenas.quantize import quantize_int8

BOUNDARY = {"QuantizeLinear", "DequantizeLinear", "Transpose", "Flatten", "ReorderInput", "ReorderOutput"}  # edges, layout changes


def optimized_ops(model: bytes, tmp_path) -> collections.Counter:
    """Op types of the graph ONNX Runtime really runs (optimization level all, one thread)."""
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    so.log_severity_level = 3
    ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    return collections.Counter(n.op_type for n in onnx.load(str(tmp_path / "optimized.onnx")).graph.node)


def int8_model(space_name: str, r: int) -> tuple[bytes, bytes]:
    sp = get_space(space_name)
    fp32 = network_model(sp, sp.max_arch(r))
    g = np.random.default_rng(0)
    return fp32, quantize_int8(fp32, [g.standard_normal((1, 3, r, r)).astype(np.float32) for _ in range(2)])


@pytest.mark.parametrize("space,r", [("cifar-mbv3-lite", 32), ("ofa-mbv3-lite", 128)])
def test_lite_networks_run_fully_in_int8(space, r, tmp_path):
    fp32, int8 = int8_model(space, r)
    n_conv = sum(n.op_type == "Conv" for n in onnx.load_from_string(fp32).graph.node)
    ops = optimized_ops(int8, tmp_path)
    assert ops["QLinearConv"] == n_conv - 1 and ops["QGemm"] == 1 and ops["Gemm"] == 0
    # float: the stem's conv over the 3 image channels (int8 is slower there; ORT fuses its BN and
    # ReLU into one FusedConv), the global average pool (ORT has no int8 ReduceMean), the graph's edges
    assert ops["Conv"] + ops["FusedConv"] == 1
    assert set(ops) - BOUNDARY - {"QLinearConv", "QLinearAdd", "QGemm", "Conv", "FusedConv"} == {"ReduceMean"}, ops


def test_hswish_se_networks_quantize_every_conv_but_keep_hswish_in_float(tmp_path):
    fp32, int8 = int8_model("cifar-mbv3", 32)
    n_conv = sum(n.op_type == "Conv" for n in onnx.load_from_string(fp32).graph.node)
    assert not any(n.op_type == "Identity" for n in onnx.load_from_string(fp32).graph.node)  # shared constants untied
    ops = optimized_ops(int8, tmp_path)
    assert ops["QLinearConv"] == n_conv - 1 and ops["Conv"] + ops["FusedConv"] <= 1  # the SE convolutions too; not the stem
    # what stays float, and why: h-swish is HardSigmoid * x (no int8 kernel), SE's squeeze is a ReduceMean
    assert {"HardSigmoid", "Mul", "ReduceMean"} <= set(ops)


def test_lite_spaces_are_relu_without_se_and_small_kernels():
    for name, base in (("ofa-mbv3-lite", "ofa-mbv3"), ("cifar-mbv3-lite", "cifar-mbv3")):
        sp, b = get_space(name), get_space(base)
        assert {s.act for s in sp.stages} == {"relu"} and not any(s.se for s in sp.stages)
        assert (sp.stem_act, sp.first_block_act, sp.head_act) == ("relu", "relu", "relu") and sp.ks_choices == (3, 5)
        assert [s.width for s in sp.stages] == [s.width for s in b.stages] and sp.resolutions == b.resolutions
        assert sp.digest() != b.digest()


def test_slower_or_lossy_int8_is_never_silent(capsys):
    assert int8_warnings(1.5, -0.002) == []
    w = int8_warnings(0.6, -0.03)
    assert len(w) == 2 and "SLOWER" in w[0] and "3.00 points" in w[1]
    assert capsys.readouterr().err.count("edgenas: warning:") == 2


def test_lite_space_trains_and_exports(tmp_path):
    """The -lite spaces go through the same pipeline: progressive shrinking, extraction, export, int8."""
    from edgenas import Supernet
    from edgenas.deploy import export_subnet
    from edgenas.train import Trainer, load_config

    cfg = load_config(None, {"space": "cifar-mbv3-lite", "data": "digits", "device": "cpu", "limit": 64, "batch_size": 32,
                             "bn_calib_images": 32, "resolutions": [24], "random_subnets": 0,
                             "phases": [{"name": "kernel", "epochs": 1, "lr": 0.05, "ks": "all", "e": "max", "d": "max"}]})
    summary = Trainer(cfg, tmp_path / "run", progress=False).run()
    assert summary["phase"] == "kernel" and 0 <= summary["top1_min"] <= 1
    sp = get_space("cifar-mbv3-lite")
    assert Supernet.load(tmp_path / "run" / "latest.pt", sp).space == sp
    r = export_subnet(sp, sp.min_arch(24), tmp_path / "m.onnx", checkpoint=str(tmp_path / "run" / "latest.pt"), int8=True,
                      calib_images=16)
    assert r["max_abs_diff"] <= 1e-4 and r["int8_speedup"] > 0 and "top1_int8" in r


def test_activation_ranges_ignore_calibration_outliers():
    """One extreme value in the calibration data must not stretch a uint8 range (it would leave a few
    levels for every ordinary value); min/max ranges, on request, do take it in."""
    import torch

    from edgenas.export import onnx_bytes

    fp32 = onnx_bytes(torch.nn.Sequential(torch.nn.Conv2d(8, 8, 1), torch.nn.ReLU()).eval(), (1, 8, 8, 8))
    batches = list(np.random.default_rng(0).standard_normal((8, 4, 8, 8, 8)).astype(np.float32))  # 16,384 values
    batches[0][0, 0, 0, 0] = 1000.0

    def input_scale(model: bytes) -> float:
        g = onnx.load_from_string(model).graph
        q = next(n for n in g.node if n.op_type == "QuantizeLinear" and n.input[0] == g.input[0].name)
        init = {t.name: onnx.numpy_helper.to_array(t) for t in g.initializer}
        return float(init[q.input[1]])

    robust, minmax = input_scale(quantize_int8(fp32, batches)), input_scale(quantize_int8(fp32, batches, percentile=None))
    assert minmax >= 1000 / 255 * 0.99
    assert robust < 10 / 255  # about the noise's own range (|x| < ~4)
