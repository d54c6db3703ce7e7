"""Static int8 quantization with ONNX Runtime (QDQ format): one path for export and latency tables."""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from .errors import ExportError

__all__ = ["CALIBRATION_IMAGES", "INT8_GRAPH", "PRECISIONS", "fuse_float_islands", "quantize_int8"]

#: the precisions a model is deployed in (one latency table each)
PRECISIONS = ("fp32", "int8")

#: activation ranges cover this percentile of the calibration values (both tails), not min/max: a few
#: outliers no longer stretch a uint8 range.  On the shipped CIFAR-10 supernet's first weights the int8 top-1
#: drop was 0.2-0.6 points (mean 0.40) against 0.4-1.4 (mean 0.78) with min/max; on its current weights the
#: two are even (mean 0.50 against 0.48, ``benchmarks/int8_pretrained.py``).
CALIBRATION_PERCENTILE = 99.99

#: training images int8 export calibrates on.  ORT's percentile histograms sort each batch after the first, so
#: calibration time grows with them: on the shipped CIFAR-10 supernet 128 images took half the time of 256 (the
#: largest subnet 17 s instead of 35 on a 2-core AMD EPYC) and lost no top-1 (6 subnets, mean int8 change -0.20
#: points against -0.40; 64 images: -0.19, ``benchmarks/int8_calibration.py``)
CALIBRATION_IMAGES = 128

#: a convolution over this few input channels (the image stem) stays float: int8 kernels work on
#: groups of 4 channels, so on 3 they are slower than fp32, and the image keeps its full precision
#: into the first layer (``benchmarks/int8.py`` measures the -lite spaces with this rule: 1.71x and
#: 1.98x fp32; the same benchmark with an int8 stem had measured 1.66x for ofa-mbv3-lite @224)
FLOAT_CONV_MAX_IN_CHANNELS = 4

#: the int8 graph's version, recorded in int8 latency tables: 2 runs h-swish, squeeze-excite's gate and
#: its pooling as int8 kernels (1: they stayed float between Q/DQ pairs; int8 tables profiled then
#: predict the h-swish spaces slower than the models exported now)
INT8_GRAPH = 2


def quantize_int8(model: bytes, calibration: Iterable[np.ndarray] | None, per_channel: bool = True,
                  percentile: float | None = CALIBRATION_PERCENTILE, fuse_islands: bool = True, weight_bits: int = 8) -> bytes:
    """Quantize a float ONNX model (weights int8 symmetric, activations uint8) from calibration batches.

    ``calibration`` yields float32 NCHW arrays fed to the model's single input; activation ranges
    are the central ``percentile`` of their values (None: min/max), weights' their min/max.  Real training
    images give accurate ranges; random ones suit latency work (the graph, hence the speed, is the same).
    Every Conv and Gemm is quantized except a dense conv over at most ``FLOAT_CONV_MAX_IN_CHANNELS``
    input channels (the stem); latency tables quantize their blocks by the same rule.
    ``fuse_islands`` (default) runs h-swish, the SE gate and the pooling as int8 kernels
    (:func:`fuse_float_islands`); False keeps them float as ``INT8_GRAPH`` 1 did, for comparisons.
    ``weight_bits`` 7 keeps weights within [-64, 64] (the same graph and kernels): x86 CPUs without VNNI multiply
    uint8 by int8 into int16 sums that saturate at 8 bits, which cost the shipped supernet's subnets up to 1.1
    points on an AVX2 CPU; 7 bits cannot saturate there (``benchmarks/int8_weight_bits.py``).
    """
    if weight_bits not in (7, 8):
        raise ExportError(f"int8 weights are 7 or 8 bits, not {weight_bits}")
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static

    batches = [np.ascontiguousarray(b, dtype=np.float32) for b in (calibration or [])]
    if not batches:
        raise ExportError("int8 quantization needs calibration data (at least one batch of input images)")
    proto = onnx.load_from_string(model)
    input_name = proto.graph.input[0].name
    for i, node in enumerate(proto.graph.node):
        node.name = node.name or f"{node.op_type}_{i}"  # nodes are excluded by name
    model, stem_convs = proto.SerializeToString(), _float_convs(proto.graph)
    overrides = _conv_weight_scales(proto.graph, set(stem_convs), weight_bits) if per_channel else {}

    class Reader(CalibrationDataReader):
        """Hands ONNX Runtime one batch per collection pass (``CalibStridedMinMax`` 1): it keeps every
        activation of a pass in memory, so a pass over all batches would hold them all at once."""

        def __init__(self) -> None:
            self._it = iter(batches)

        def __len__(self) -> int:
            return len(batches)

        def set_range(self, start_index: int, end_index: int) -> None:
            self._it = iter(batches[start_index:end_index])

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self._it, None)
            return None if batch is None else {input_name: batch}

    root = logging.getLogger()  # ORT's quantizer logs advice on the root logger: keep the CLI output clean
    level = root.level
    root.setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="edgenas-q-") as tmp:
        src, dst = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        src.write_bytes(model)
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # the histogram calibrator prints its progress
                quantize_static(
                    str(src), str(dst), Reader(), quant_format=QuantFormat.QDQ, per_channel=per_channel,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    calibrate_method=CalibrationMethod.MinMax if percentile is None else CalibrationMethod.Percentile,
                    nodes_to_exclude=stem_convs, reduce_range=weight_bits == 7,
                    extra_options={"CalibStridedMinMax": 1, "TensorQuantOverrides": overrides,
                                   **({} if percentile is None else {"CalibPercentile": percentile})},
                )
        finally:
            root.setLevel(level)
        if not fuse_islands:
            return dst.read_bytes()
        out = onnx.load(str(dst))
        fuse_float_islands(out)
        return out.SerializeToString()


def fuse_float_islands(model: onnx.ModelProto) -> int:
    """Rewrite the float islands ORT's quantizer leaves into QDQ groups ONNX Runtime runs in int8; returns their count.

    The quantizer has no int8 form for HardSwish, HardSigmoid or ReduceMean, so each ran as
    DequantizeLinear -> float op -> QuantizeLinear, which ate most of what int8 saved on the h-swish + SE
    spaces (largest subnets, int8 over fp32 on a 2-core Intel Xeon: ofa-mbv3 @224 1.00x that way, 1.20x
    rewritten; cifar-mbv3 @32 1.10x and 1.31x, ``benchmarks/int8.py``).  Rewritten:

    - ``hardsigmoid(x) = clip((x + 3) / 6, 0, 1)``: ``x + 3`` quantized at 6x the output scale reads back,
      at that scale, as the clipped gate (uint8 saturation is the clip: needs zero point 0 and a range
      ending at 1 or below, as calibrating a [0, 1] output gives): one QLinearAdd;
    - ``hardswish(x) = x * hardsigmoid(x)``: that gate at scale 1/255, times x: QLinearAdd + QLinearMul;
    - ``ReduceMean`` over H and W with kept dims (SE's squeeze, the head's pooling) is GlobalAveragePool,
      which ORT runs as QLinearGlobalAveragePool.
    """
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    producer = {o: n for n in graph.node for o in n.output}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for n in graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    outputs = {o.name for o in graph.output}

    def const(name: str, value: np.ndarray) -> str:
        graph.initializer.append(numpy_helper.from_array(value, name))
        inits[name] = graph.initializer[-1]
        return name

    def island(node: onnx.NodeProto) -> tuple[onnx.NodeProto, onnx.NodeProto] | None:
        """The DequantizeLinear feeding ``node`` and the one QuantizeLinear reading it, if it is a float island."""
        dq, users = producer.get(node.input[0]), consumers.get(node.output[0], [])
        if dq is None or dq.op_type != "DequantizeLinear" or node.output[0] in outputs:
            return None
        return (dq, users[0]) if len(users) == 1 and users[0].op_type == "QuantizeLinear" else None

    def scalar(name: str) -> float:
        return float(numpy_helper.to_array(inits[name]).reshape(-1)[0]) if name in inits else float("nan")

    ranks: dict[str, int] = {}
    if any(n.op_type == "ReduceMean" for n in graph.node):
        inferred = onnx.shape_inference.infer_shapes(model).graph
        ranks = {v.name: len(v.type.tensor_type.shape.dim) for v in (*inferred.value_info, *inferred.input)
                 if v.type.tensor_type.HasField("shape")}
    rewritten, nodes, three = 0, [], ("int8_three_q", "int8_three_scale")
    for node in graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        pair = island(node) if node.op_type in ("HardSwish", "HardSigmoid", "ReduceMean") else None
        if pair is None:
            nodes.append(node)
            continue
        dq, q = pair
        p = f"{node.name or node.output[0]}_int8"
        if node.op_type == "ReduceMean":
            axes = sorted(int(a) % 4 for a in attrs.get("axes", ()))
            if axes != [2, 3] or attrs.get("keepdims", 1) != 1 or len(node.input) > 1 or ranks.get(node.input[0]) != 4:
                nodes.append(node)
                continue
            nodes.append(helper.make_node("GlobalAveragePool", [node.input[0]], list(node.output), name=p))
            rewritten += 1
            continue
        if node.op_type == "HardSigmoid" and not (
            abs(attrs.get("alpha", 0.2) - 1 / 6) < 1e-6 and abs(attrs.get("beta", 0.5) - 0.5) < 1e-6
            and len(q.input) > 2 and scalar(q.input[2]) == 0 and scalar(q.input[1]) * 254.5 <= 1
        ):
            nodes.append(node)
            continue
        if three[0] not in inits:
            const(three[0], np.array(3, np.uint8))
            const(three[1], np.array(1.0, np.float32))
        nodes.append(helper.make_node("DequantizeLinear", list(three), [p + "_three"], name=p + "_three"))  # 3.0
        if node.op_type == "HardSigmoid":
            # x + 3 quantized at 6 * s: read back at s (by the DequantizeLinear nodes after q) it is the gate
            nodes.append(helper.make_node("Add", [node.input[0], p + "_three"], [p + "_add"], name=p + "_add"))
            q.input[0], q.input[1] = p + "_add", const(p + "_scale6", np.array(6 * scalar(q.input[1]), np.float32))
        else:
            zero = const(p + "_zero", np.array(0, np.uint8))
            nodes += [
                helper.make_node("Add", [node.input[0], p + "_three"], [p + "_add"], name=p + "_add"),
                helper.make_node("QuantizeLinear", [p + "_add", const(p + "_scale6", np.array(6 / 255, np.float32)), zero],
                                 [p + "_gate_q"], name=p + "_gate_q"),
                helper.make_node("DequantizeLinear", [p + "_gate_q", const(p + "_scale1", np.array(1 / 255, np.float32)), zero],
                                 [p + "_gate"], name=p + "_gate"),
                helper.make_node("DequantizeLinear", list(dq.input), [p + "_x"], name=p + "_x"),  # one DQ per int8 group
                helper.make_node("Mul", [p + "_x", p + "_gate"], list(node.output), name=p + "_mul"),
            ]
        rewritten += 1
    del graph.node[:]
    graph.node.extend(nodes)
    return rewritten


def _conv_weight_scales(graph: onnx.GraphProto, skip: set[str], weight_bits: int) -> dict[str, list[dict]]:
    """Per-channel scales of the quantized Conv weights, as ORT's quantizer's ``TensorQuantOverrides``.

    The quantizer computes them channel by channel in Python, about a third of its time on the int8 models a
    latency table builds; here each weight's channels at once, by the quantizer's own rule (symmetric range made to
    hold 0, float64 division, a scale below float32's smallest normal replaced by 1), so the model is the same to
    the byte (``tests/test_int8.py``)."""
    try:
        from onnxruntime.quantization.quant_utils import get_qmin_qmax_for_qType
    except ImportError:  # a quantizer without it: it computes the scales itself, as before
        return {}
    qmin, qmax = (float(q) for q in get_qmin_qmax_for_qType(onnx.TensorProto.INT8, reduce_range=weight_bits == 7, symmetric=True))
    zero_point = np.int8(round((qmin + qmax) / 2))
    weights = {t.name: t for t in graph.initializer}
    out: dict[str, list[dict]] = {}
    for node in graph.node:
        w = weights.get(node.input[1]) if node.op_type == "Conv" and len(node.input) > 1 and node.name not in skip else None
        if w is None or w.name in out or w.data_type != onnx.TensorProto.FLOAT:
            continue
        a = numpy_helper.to_array(w).reshape(w.dims[0], -1)
        absmax = np.maximum(-np.minimum(a.min(1), 0), np.maximum(a.max(1), 0)).astype(np.float64)
        scale = 2 * absmax / (qmax - qmin)
        scale = np.where(scale < np.finfo(np.float32).tiny, 1.0, scale).astype(np.float32)
        out[w.name] = [{"scale": s, "zero_point": zero_point, **({"axis": 0} if i == 0 else {})} for i, s in enumerate(scale)]
    return out


def _float_convs(graph: onnx.GraphProto) -> list[str]:
    """Names of the dense convolutions over too few input channels to gain from int8."""
    shapes = {t.name: tuple(t.dims) for t in graph.initializer}
    out = []
    for node in graph.node:
        group = next((a.i for a in node.attribute if a.name == "group"), 1)
        w = shapes.get(node.input[1]) if node.op_type == "Conv" and len(node.input) > 1 else None
        if w is not None and group == 1 and w[1] <= FLOAT_CONV_MAX_IN_CHANNELS:
            out.append(node.name)
    return out
