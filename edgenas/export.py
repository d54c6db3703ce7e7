"""Static subnet -> ONNX, checked by ``onnx.checker`` and by ONNX Runtime against PyTorch.

The exporter is pinned (TorchScript-based, ``dynamo=False``: no onnxscript dependency and a
stable op set for small CNNs) and so is the opset.  The graph has one float32 NCHW input named
``input`` with a dynamic batch axis and returns ``logits``.
"""

from __future__ import annotations

import io
import os
import warnings
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from .errors import ExportError
from .io import atomic_path, check_writable

__all__ = ["OPSET", "ExportResult", "export_onnx", "onnx_parity", "ort_session", "read_metadata", "set_metadata"]

OPSET = 17
PARITY_TOL = 1e-4


@dataclass(frozen=True)
class ExportResult:
    path: Path
    max_abs_diff: float
    opset: int
    simplified: bool


def ort_session(model: str | os.PathLike | bytes, threads: int = 1) -> ort.InferenceSession:
    """A CPU session with the deployment settings (the latency agent's, so parity and timing agree)."""
    from .agent import make_session

    return make_session(model if isinstance(model, bytes) else str(model), "CPUExecutionProvider", threads)


def onnx_parity(model: nn.Module, onnx_path: str | os.PathLike, resolution: int, batch: int = 3, seed: int = 0) -> float:
    """Max |ORT - PyTorch| on a seeded random batch (a size the export did not trace with)."""
    x = torch.randn(batch, 3, resolution, resolution, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        ref = model.eval()(x).numpy()
    out = ort_session(onnx_path).run(None, {"input": x.numpy()})[0]
    if out.shape != ref.shape:
        raise ExportError(f"ONNX output shape {out.shape} differs from PyTorch {ref.shape}")
    return float(np.max(np.abs(out - ref)))


def to_onnx(model: nn.Module, input_shape: tuple[int, ...], f: str | os.PathLike | io.BytesIO, opset: int = OPSET,
            output_name: str = "logits") -> None:
    """The one export path (deployment models and latency-table blocks alike).

    Traced with batch 2 so the tracer cannot specialise the batch axis to 1.
    """
    x = torch.zeros(2, *input_shape[1:])
    buf = io.BytesIO()
    with warnings.catch_warnings(), redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model.eval(), (x,), cast(Any, buf), dynamo=False, opset_version=opset,
            input_names=["input"], output_names=[output_name],
            dynamic_axes={"input": {0: "batch"}, output_name: {0: "batch"}},
            do_constant_folding=True,
        )
    data = untie_shared_constants(onnx.load_from_string(buf.getvalue())).SerializeToString()
    if isinstance(f, io.BytesIO):
        f.write(data)
    else:
        Path(f).write_bytes(data)


def untie_shared_constants(model: onnx.ModelProto) -> onnx.ModelProto:
    """Give every consumer of a deduplicated constant its own copy.

    The exporter merges equal initializers (zero-initialised SE biases, say) and feeds the others
    through ``Identity`` nodes; ONNX Runtime's int8 quantizer then leaves those convolutions in
    float (DequantizeLinear + Conv).  Copies cost a few bytes and keep every Conv quantizable.
    """
    inits = {t.name: t for t in model.graph.initializer}
    kept = []
    for node in model.graph.node:
        if node.op_type == "Identity" and node.input[0] in inits:
            copy = onnx.TensorProto()
            copy.CopyFrom(inits[node.input[0]])
            copy.name = node.output[0]
            model.graph.initializer.append(copy)
        else:
            kept.append(node)
    del model.graph.node[:]
    model.graph.node.extend(kept)
    return model


def onnx_bytes(model: nn.Module, input_shape: tuple[int, ...], opset: int = OPSET, output_name: str = "logits") -> bytes:
    buf = io.BytesIO()
    to_onnx(model, input_shape, buf, opset, output_name)
    return buf.getvalue()


def set_metadata(path: str | os.PathLike, metadata: dict[str, str]) -> None:
    model = onnx.load(str(path))
    del model.metadata_props[:]
    for k, v in metadata.items():
        model.metadata_props.add(key=k, value=v)
    onnx.save(model, str(path))


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """edgenas metadata of an exported model (space, arch, resolution, preprocessing, classes)."""
    try:
        meta = ort_session(path).get_modelmeta().custom_metadata_map
    except Exception as exc:
        raise ExportError(f"cannot load ONNX model {path}: {str(exc).splitlines()[0][:200]}") from None
    return dict(meta)


def export_onnx(model: nn.Module, resolution: int, path: str | os.PathLike, *, opset: int = OPSET,
                simplify: bool = False, tol: float = PARITY_TOL, metadata: dict[str, str] | None = None) -> ExportResult:
    """Export ``model`` (a static subnet, in eval mode) and prove it matches PyTorch.

    ``simplify`` runs onnxslim (constant folding, dead and identity node removal, shape-op
    folding) and re-checks parity on the result.
    Nothing is written at ``path`` unless parity holds.
    """
    path = check_writable(path)
    model = model.eval()
    with atomic_path(path) as tmp:
        to_onnx(model, (1, 3, resolution, resolution), tmp, opset)
        try:
            onnx.checker.check_model(onnx.load(str(tmp)), full_check=True)
        except onnx.checker.ValidationError as exc:
            raise ExportError(f"exported graph fails onnx.checker: {str(exc).splitlines()[0]}") from None
        if simplify:
            import onnxslim

            with warnings.catch_warnings(), redirect_stdout(io.StringIO()):
                warnings.simplefilter("ignore")
                onnx.save(onnxslim.slim(onnx.load(str(tmp))), str(tmp))
            onnx.checker.check_model(onnx.load(str(tmp)), full_check=True)
        if metadata:
            set_metadata(tmp, metadata)
        diff = onnx_parity(model, tmp, resolution)
        if not diff <= tol:
            raise ExportError(f"ONNX Runtime output differs from PyTorch by {diff:.3g} (> {tol:g}); not written")
    return ExportResult(path, diff, opset, simplify)
