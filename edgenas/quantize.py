"""Static int8 quantization with ONNX Runtime (QDQ format): one path for export and latency tables."""

from __future__ import annotations

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


def quantize_int8(model: bytes, calibration: Iterable[np.ndarray] | None, per_channel: bool = True) -> bytes:
    """Quantize a float ONNX model (weights int8 symmetric, activations uint8) from calibration batches.

    ``calibration`` yields float32 NCHW arrays fed to the model's single input; ranges are
    min/max over them.  Real training images give accurate ranges; random ones suit latency work.
    """
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    batches = [np.ascontiguousarray(b, dtype=np.float32) for b in (calibration or [])]
    if not batches:
        raise ExportError("int8 quantization needs calibration data (at least one batch of input images)")
    input_name = onnx.load_from_string(model).graph.input[0].name

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(batches)

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
            quantize_static(
                str(src), str(dst), Reader(), quant_format=QuantFormat.QDQ, per_channel=per_channel,
                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
            )
        finally:
            root.setLevel(level)
        return dst.read_bytes()
