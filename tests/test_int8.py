"""int8 that pays off: every Conv/Gemm becomes an int8 kernel after ONNX Runtime's optimizer (but the
3-channel stem, slower in int8), h-swish, squeeze-excite and pooling run as int8 kernels too, and the
quantization-friendly ``-lite`` spaces leave nothing in float but the stem."""

from __future__ import annotations

import collections

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from edgenas import get_space
from edgenas.deploy import int8_warnings
from edgenas.latency.profile import network_model
from edgenas.quantize import fuse_float_islands, quantize_int8

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
    assert ops["QLinearConv"] == n_conv - 1 and ops["QGemm"] == 1 and ops["Gemm"] == 0 and ops["QLinearGlobalAveragePool"] == 1
    # float: only the stem's conv over the 3 image channels (int8 is slower there; ORT fuses its BN and
    # ReLU into one FusedConv) and the graph's edges
    assert ops["Conv"] + ops["FusedConv"] == 1
    assert set(ops) - BOUNDARY - {"QLinearConv", "QLinearAdd", "QGemm", "Conv", "FusedConv", "QLinearGlobalAveragePool"} == set(), ops


def test_lite_networks_kept_only_the_head_pooling_in_float_before_int8_graph_2():
    """What an int8 table of graph 1 mispredicts for a -lite space (its load warning says so)."""
    sp = get_space("cifar-mbv3-lite")
    fp32 = network_model(sp, sp.min_arch(32))
    old = onnx.load_from_string(quantize_int8(fp32, [np.zeros((1, 3, 32, 32), np.float32)], fuse_islands=False))
    assert fuse_float_islands(old) == 1 and [n.name for n in old.graph.node if n.op_type == "GlobalAveragePool"] == ["/head/ReduceMean_int8"]


def test_hswish_se_networks_run_hswish_and_se_in_int8(tmp_path):
    fp32, int8 = int8_model("cifar-mbv3", 32)
    graph = onnx.load_from_string(fp32).graph
    n_conv = sum(n.op_type == "Conv" for n in graph.node)
    n_hswish, n_se = (sum(n.op_type == t for n in graph.node) for t in ("HardSwish", "HardSigmoid"))
    assert not any(n.op_type == "Identity" for n in graph.node)  # shared constants untied
    ops = optimized_ops(int8, tmp_path)
    assert ops["QLinearConv"] == n_conv - 1 and ops["Conv"] + ops["FusedConv"] <= 1  # the SE convolutions too; not the stem
    # every block's h-swish (QLinearAdd + QLinearMul), SE gate (QLinearAdd) and squeeze (global pool) in int8;
    # in float only the stem's h-swish (fused into the stem's conv by ONNX Runtime 1.32, not 1.20) and the head's two,
    # whose outputs are not quantized (one feeds the pooling, the other the classifier)
    assert ops["QLinearGlobalAveragePool"] == n_se and ops["QLinearMul"] == n_se + (n_hswish - 3), ops
    assert 2 <= ops["HardSigmoid"] == ops["Mul"] <= 3 and ops["ReduceMean"] == 1, ops


def _qdq_graph(op: str, x_scale: float, x_zero: int, y_scale: float, y_zero: int, shape: list[int], **attrs) -> onnx.ModelProto:
    """uint8 x -> DequantizeLinear -> ``op`` -> QuantizeLinear -> uint8 y, as ONNX Runtime's quantizer leaves a float op."""
    h, T = onnx.helper, onnx.TensorProto
    inits = [h.make_tensor("xs", T.FLOAT, [], [x_scale]), h.make_tensor("xz", T.UINT8, [], [x_zero]),
             h.make_tensor("ys", T.FLOAT, [], [y_scale]), h.make_tensor("yz", T.UINT8, [], [y_zero])]
    nodes = [h.make_node("DequantizeLinear", ["x", "xs", "xz"], ["xf"]), h.make_node(op, ["xf"], ["yf"], name="island", **attrs),
             h.make_node("QuantizeLinear", ["yf", "ys", "yz"], ["y"])]
    out_shape = shape[:2] + [1, 1] if op == "ReduceMean" else shape
    graph = h.make_graph(nodes, "island", [h.make_tensor_value_info("x", T.UINT8, shape)],
                         [h.make_tensor_value_info("y", T.UINT8, out_shape)], inits)
    return h.make_model(graph, opset_imports=[h.make_opsetid("", 17)], ir_version=8)  # what ONNX Runtime 1.20 reads


def _run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    so = ort.SessionOptions()
    so.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


@pytest.mark.parametrize("op,x_q,y_q,attrs", [
    ("HardSwish", (8 / 255, 128), (4.375 / 255, 22), {}),  # x in [-4, 4], h-swish in [-0.375, 4]
    ("HardSwish", (2 / 255, 200), (0.8 / 255, 60), {}),  # a range cut off at both ends
    ("HardSigmoid", (11 / 255, 128), (1 / 255, 0), {"alpha": 1 / 6, "beta": 0.5}),  # SE's gate
    ("HardSigmoid", (12 / 255, 100), (0.7 / 255, 0), {"alpha": 1 / 6, "beta": 0.5}),  # a gate range below 1
    ("ReduceMean", (0.05, 30), (0.04, 10), {"axes": [2, 3], "keepdims": 1}),  # SE's squeeze, the head's pooling
])
def test_float_islands_become_int8_kernels_computing_the_same_values(op, x_q, y_q, attrs, tmp_path):
    shape = [2, 8, 4, 4] if op == "ReduceMean" else [1, 256, 2, 2]
    g = np.random.default_rng(0)
    x = g.integers(0, 256, shape, dtype=np.uint8) if op == "ReduceMean" else np.repeat(np.arange(256, dtype=np.uint8), 4).reshape(shape)
    model = _qdq_graph(op, *x_q, *y_q, shape, **attrs)
    before = _run(model, x)
    assert fuse_float_islands(model) == 1
    after = _run(model, x)
    diff = after.astype(int) - before.astype(int)
    assert np.abs(diff).max() <= 1 and abs(diff.mean()) < 0.1  # every uint8 input: at most one rounding step apart, unbiased
    ops = optimized_ops(model.SerializeToString(), tmp_path)
    assert not {"HardSwish", "HardSigmoid", "ReduceMean", "Mul", "Add"} & set(ops), ops  # no float op left


@pytest.mark.parametrize("op,y_q,attrs", [
    ("HardSigmoid", (1 / 255, 0), {"alpha": 0.2, "beta": 0.5}),  # not the h-swish gate
    ("HardSigmoid", (1 / 255, 3), {"alpha": 1 / 6, "beta": 0.5}),  # a zero point the clip at 0 would miss
    ("HardSigmoid", (2 / 255, 0), {"alpha": 1 / 6, "beta": 0.5}),  # a range past 1: saturation would not clip at 1
    ("ReduceMean", (0.04, 10), {"axes": [1], "keepdims": 1}),  # not a spatial mean
])
def test_float_islands_that_cannot_be_int8_stay_as_they_are(op, y_q, attrs):
    model = _qdq_graph(op, 8 / 255, 128, *y_q, [1, 8, 4, 4], **attrs)  # rewritten only, never run
    before = model.SerializeToString()
    assert fuse_float_islands(model) == 0 and model.SerializeToString() == before


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


def test_seven_bit_weights_for_cpus_without_vnni(tmp_path):
    """The same int8 graph with weights in [-64, 64] (no int16 saturation on AVX2 without VNNI), recorded in the model."""
    from edgenas.cli import main
    from edgenas.deploy import saturating_cpu
    from edgenas.errors import ExportError
    from edgenas.export import read_metadata

    def weights(model: bytes) -> np.ndarray:
        g = onnx.load_from_string(model).graph
        return np.concatenate([onnx.numpy_helper.to_array(t).ravel() for t in g.initializer if t.data_type == onnx.TensorProto.INT8])

    sp = get_space("tiny")
    fp32 = network_model(sp, sp.max_arch(16))
    calib = [np.random.default_rng(0).standard_normal((1, 3, 16, 16)).astype(np.float32)]
    eight, seven = quantize_int8(fp32, calib), quantize_int8(fp32, calib, weight_bits=7)
    assert np.abs(weights(eight)).max() == 127 and np.abs(weights(seven).astype(int)).max() == 64
    assert [n.op_type for n in onnx.load_from_string(seven).graph.node] == [n.op_type for n in onnx.load_from_string(eight).graph.node]
    with pytest.raises(ExportError, match="7 or 8 bits"):
        quantize_int8(fp32, calib, weight_bits=6)

    assert main(["export", "--space", "tiny", "--arch", "min", "--data", "digits", "--int8", "--calib-images", "16",
                 "--int8-weight-bits", "7", "--out", str(tmp_path / "m.onnx")]) == 0
    assert read_metadata(tmp_path / "m.int8.onnx")["edgenas.int8_weight_bits"] == "7"
    assert saturating_cpu(["avx", "avx2", "fma"]) and not saturating_cpu(["avx2", "avx512f", "avx512_vnni"])
    assert not saturating_cpu(["asimd", "asimddp"]) and not saturating_cpu([])


def _graph(model: bytes) -> tuple[list, list]:
    """Everything of a graph but its values: nodes in order with their wiring, initializers' names, types and shapes."""
    g = onnx.load_from_string(model).graph
    return ([(n.op_type, list(n.input), list(n.output)) for n in g.node],
            sorted((t.name, t.data_type, tuple(t.dims)) for t in g.initializer))


def test_the_int8_network_a_table_times_is_the_graph_export_makes():
    """Latency tables calibrate their int8 models on noise with min/max ranges (faster); export calibrates on
    images with percentile ranges.  Only the scales may differ, or the table times another model."""
    sp = get_space("tiny")
    arch = sp.arch({**sp.sample(np.random.default_rng(1)).to_dict(), "r": 16})
    fp32 = network_model(sp, arch)
    g = np.random.default_rng(5)
    exported = quantize_int8(fp32, [g.uniform(-2, 2, (8, 3, 16, 16)).astype(np.float32) for _ in range(2)])
    timed = network_model(sp, arch, precision="int8")
    assert _graph(timed) == _graph(exported)
    assert timed != exported  # the same graph with other ranges


@pytest.mark.parametrize("space,bits,percentile", [("tiny-mixed", 8, None), ("tiny-mixed", 7, 99.99), ("cifar-mbv3-lite", 8, 99.99)])
def test_weight_scales_computed_at_once_make_the_model_ort_makes_alone(space, bits, percentile, monkeypatch):
    """The Conv weights' per-channel scales edgenas hands ORT's quantizer (faster) give the very model the quantizer
    makes computing them itself, a channel of zeros (scale 1) included: if ORT changes its rule, this fails."""
    import edgenas.quantize as quantize

    sp = get_space(space)
    proto = onnx.load_from_string(network_model(sp, sp.sample(np.random.default_rng(2)), precision="fp32"))
    conv = next(n for n in proto.graph.node if n.op_type == "Conv" and n.name not in quantize._float_convs(proto.graph))
    w = next(t for t in proto.graph.initializer if t.name == conv.input[1])
    a = onnx.numpy_helper.to_array(w).copy()
    a[0] = 0
    w.CopyFrom(onnx.numpy_helper.from_array(a, w.name))
    fp32, r = proto.SerializeToString(), proto.graph.input[0].type.tensor_type.shape.dim[2].dim_value
    calib = [np.random.default_rng(3).standard_normal((1, 3, r, r)).astype(np.float32)]
    assert len(quantize._conv_weight_scales(proto.graph, set(), bits)) > 1
    fast = quantize_int8(fp32, calib, percentile=percentile, weight_bits=bits)
    monkeypatch.setattr(quantize, "_conv_weight_scales", lambda *args: {})
    assert fast == quantize_int8(fp32, calib, percentile=percentile, weight_bits=bits)
