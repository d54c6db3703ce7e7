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

from .errors import ExportError

__all__ = ["PRECISIONS", "quantize_int8"]

#: the precisions a model is deployed in (one latency table each)
PRECISIONS = ("fp32", "int8")

#: activation ranges cover this percentile of the calibration values (both tails), not min/max: a few
#: outliers no longer stretch a uint8 range.  On the shipped CIFAR-10 supernet the int8 top-1 drop is
#: 0.2-0.6 points (mean 0.40) against 0.4-1.4 (mean 0.78) with min/max (``benchmarks/int8_pretrained.py``).
CALIBRATION_PERCENTILE = 99.99

#: a convolution over this few input channels (the image stem) stays float: int8 kernels work on
#: groups of 4 channels, so on 3 they are slower than fp32, and the image keeps its full precision
#: into the first layer (``benchmarks/int8.py`` measures the -lite spaces with this rule: 1.71x and
#: 1.98x fp32; the same benchmark with an int8 stem had measured 1.66x for ofa-mbv3-lite @224)
FLOAT_CONV_MAX_IN_CHANNELS = 4


def quantize_int8(model: bytes, calibration: Iterable[np.ndarray] | None, per_channel: bool = True,
                  percentile: float | None = CALIBRATION_PERCENTILE) -> bytes:
    """Quantize a float ONNX model (weights int8 symmetric, activations uint8) from calibration batches.

    ``calibration`` yields float32 NCHW arrays fed to the model's single input; activation ranges
    are the central ``percentile`` of their values (None: min/max), weights' their min/max.  Real training
    images give accurate ranges; random ones suit latency work (the graph, hence the speed, is the same).
    Every Conv and Gemm is quantized except a dense conv over at most ``FLOAT_CONV_MAX_IN_CHANNELS``
    input channels (the stem); latency tables quantize their blocks by the same rule.
    """
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static

    batches = [np.ascontiguousarray(b, dtype=np.float32) for b in (calibration or [])]
    if not batches:
        raise ExportError("int8 quantization needs calibration data (at least one batch of input images)")
    proto = onnx.load_from_string(model)
    input_name = proto.graph.input[0].name
    for i, node in enumerate(proto.graph.node):
        node.name = node.name or f"{node.op_type}_{i}"  # nodes are excluded by name
    model, stem_convs = proto.SerializeToString(), _float_convs(proto.graph)

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
                    nodes_to_exclude=stem_convs,
                    extra_options={"CalibStridedMinMax": 1, **({} if percentile is None else {"CalibPercentile": percentile})},
                )
        finally:
            root.setLevel(level)
        return dst.read_bytes()


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
