"""What goes to the device: int8 and ORT-format models, mobile EP report, and the on-device check.

Every exported model carries its space, arch, resolution, preprocessing and class names as ONNX
metadata, so ``deploy check`` can predict its latency from a table and ``deploy/infer.py`` can
preprocess exactly as training did, with nothing else shipped beside the model.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from .agent import DEFAULT_PROTOCOL, latency_ms
from .data import DataSplit, augment, batches, materialize
from .errors import ExportError
from .export import ort_session, read_metadata, set_metadata
from .io import atomic_path
from .latency.backends import LocalBackend, other_cpu
from .latency.profile import calibration_model
from .latency.table import LatencyError, LatencyTable
from .quantize import CALIBRATION_IMAGES, quantize_int8
from .space import Arch, SearchSpace, definition_record, get_space

__all__ = [
    "deploy_check",
    "export_subnet",
    "measure_int8_drop",
    "model_metadata",
    "mobile_report",
    "onnx_top1",
    "quantize_model",
    "to_ort_format",
]


def model_metadata(space: SearchSpace, arch: Arch, precision: str = "fp32", data: DataSplit | None = None) -> dict[str, str]:
    meta = {"edgenas.space": space.name, "edgenas.arch": arch.to_json(), "edgenas.resolution": str(arch.r),
            "edgenas.precision": precision}
    if record := definition_record(space):
        meta["edgenas.space_def"] = json.dumps(record["space_def"], sort_keys=True)
        meta["edgenas.space_digest"] = space.digest()
    if data is not None:
        meta["edgenas.mean"], meta["edgenas.std"] = json.dumps(list(data.mean)), json.dumps(list(data.std))
        meta["edgenas.preprocess"] = "rgb uint8 / 255, bilinear antialiased resize to resolution, (x - mean) / std, NCHW"
        meta["edgenas.classes"] = json.dumps(list(data.train.classes))
        meta["edgenas.data"] = json.dumps(data.info)
    return meta


def onnx_top1(model_path: str | os.PathLike, data: DataSplit, resolution: int, batch: int = 256, threads: int = 2) -> float:
    """Top-1 of an ONNX model on the validation split, preprocessed as in training."""
    sess = ort_session(model_path, threads=threads)
    correct = 0
    for images, labels in batches(data.val, batch):
        pred = sess.run(None, {"input": augment(images, resolution, data.mean, data.std).numpy()})[0].argmax(1)
        correct += int((pred == labels.numpy()).sum())
    return correct / len(data.val)


def calibration_batches(data: DataSplit, resolution: int, n_images: int = CALIBRATION_IMAGES, batch: int = 32, seed: int = 0) -> list[np.ndarray]:
    """Real training images (seeded subset), preprocessed as at inference, for int8 calibration."""
    if data is None or len(data.train) == 0:
        raise ExportError("int8 quantization needs calibration data: give --data (the training data)")
    idx = np.sort(np.random.default_rng(seed).permutation(len(data.train))[:n_images])
    imgs = materialize(data.train.subset(idx)).images
    return [augment(imgs[i : i + batch], resolution, data.mean, data.std).numpy() for i in range(0, len(imgs), batch)]


def quantize_model(fp32_path: str | os.PathLike, out: str | os.PathLike, calibration: list[np.ndarray], weight_bits: int = 8) -> Path:
    """Static QDQ int8 (per-channel weights) of an exported model; metadata carried over."""
    meta = read_metadata(fp32_path)
    q = quantize_int8(Path(fp32_path).read_bytes(), calibration, per_channel=True, weight_bits=weight_bits)
    with atomic_path(out) as tmp:
        tmp.write_bytes(q)
        set_metadata(tmp, {**meta, "edgenas.precision": "int8", "edgenas.int8_weight_bits": str(weight_bits)})
    return Path(out)


def to_ort_format(onnx_path: str | os.PathLike) -> dict[str, str]:
    """ORT format for ONNX Runtime Mobile: ``MODEL.ort`` and ``MODEL.required_operators.config``."""
    from onnxruntime.tools.convert_onnx_models_to_ort import OptimizationStyle, convert_onnx_models_to_ort

    src = Path(onnx_path)
    with tempfile.TemporaryDirectory(prefix="edgenas-ort-") as tmp:
        work = Path(tmp) / src.name
        shutil.copyfile(src, work)
        level = logging.getLogger().level
        logging.getLogger().setLevel(logging.ERROR)
        try:
            with contextlib.redirect_stdout(sys.stderr):  # its progress lines must not precede --json's object
                convert_onnx_models_to_ort(work, Path(tmp) / "out", optimization_styles=[OptimizationStyle.Fixed])
        except Exception as exc:
            raise ExportError(f"ORT format conversion failed: {str(exc).splitlines()[0][:200]}") from None
        finally:
            logging.getLogger().setLevel(level)
        produced = {p.suffix: p for p in (Path(tmp) / "out").iterdir()}
        if ".ort" not in produced:
            raise ExportError(f"ORT format conversion of {src} produced no .ort file")
        ort_path, cfg_path = src.with_suffix(".ort"), src.with_suffix(".required_operators.config")
        with atomic_path(ort_path) as t:
            shutil.copyfile(produced[".ort"], t)
        config = next((p for p in produced.values() if p.name.endswith(".config")), None)
        if config is not None:
            with atomic_path(cfg_path) as t:
                shutil.copyfile(config, t)
    return {"ort": str(ort_path), "required_operators": str(cfg_path) if config is not None else ""}


def mobile_report(onnx_path: str | os.PathLike) -> dict[str, Any]:
    """How much of the model NNAPI and CoreML would take (ORT's usability checker, batch fixed to 1)."""
    import onnxruntime as ort
    from onnxruntime.tools.mobile_helpers import usability_checker as uc
    from onnxruntime.tools.onnx_model_utils import make_dim_param_fixed

    model = onnx.load(str(onnx_path))
    for inp in model.graph.input:
        for dim in inp.type.tensor_type.shape.dim:
            if dim.dim_param:
                make_dim_param_fixed(model.graph, dim.dim_param, 1)
    report: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        fixed = Path(tmp) / "fixed.onnx"
        onnx.save(model, str(fixed))
        shaped = uc.ModelProtoWithShapeInfo(fixed).model_with_shape_info
        checks = {
            "nnapi": lambda m: uc.check_nnapi_partitions(m, True),
            "coreml_neuralnetwork": lambda m: uc.check_coreml_partitions(m, True, "coreml_supported_neuralnetwork_ops.md"),
            "coreml_mlprogram": lambda m: uc.check_coreml_partitions(m, True, "coreml_supported_mlprogram_ops.md"),
        }
        for name, check in checks.items():
            info = check(shaped)
            report[name] = {"supported_nodes": info.num_supported_nodes, "nodes": info.num_nodes,
                            "partitions": info.num_partitions, "unsupported_ops": sorted(info.unsupported_ops),
                            "suitability": info.suitability().name}
    xnn = "XnnpackExecutionProvider" in ort.get_available_providers()
    report["xnnpack"] = {"checked": False, "reason": "ORT's usability checker covers NNAPI and CoreML only" +
                         ("" if xnn else "; this onnxruntime build has no XNNPACK EP to try the model on")}
    return report


#: calibration networks ``deploy_check`` re-measures beside the model (a table holds 30; an int8 one takes ~1.5 s to
#: build for cifar-mbv3 on a 2-core CPU)
DRIFT_NETWORKS = 4


def deploy_check(model_path: str | os.PathLike, table: LatencyTable, backend, data: str | DataSplit | None = None,
                 known_top1: dict[str, float] | None = None) -> dict[str, Any]:
    """Measure an exported model on the table's device: latency vs prediction, size, accuracy.

    ``data`` (a ``--data`` string) is split and normalised exactly as recorded in the model: its
    training data gives the held-out split; other data is evaluated whole.  ``known_top1``: models (by
    path) already scored on that ``DataSplit``, as export has just done, are not scored again.
    """
    path = Path(model_path)
    if not path.is_file():
        raise ExportError(f"model not found: {path}")
    meta = read_metadata(path)
    if "edgenas.arch" not in meta:
        raise ExportError(f"{path} was not exported by edgenas (no arch metadata): cannot predict its latency")
    try:
        definition = json.loads(meta["edgenas.space_def"]) if "edgenas.space_def" in meta else None
    except json.JSONDecodeError:
        raise ExportError(f"{path}: its space definition metadata is not JSON") from None
    space = get_space(meta.get("edgenas.space", "?"), definition, meta.get("edgenas.space_digest"))
    arch = space.arch(json.loads(meta["edgenas.arch"]))
    table.check_space(space, "--table")
    precision = meta.get("edgenas.precision", "fp32")
    if table.meta["precision"] != precision:
        raise LatencyError(f"{path} is a {precision} model but the table holds {table.meta['precision']} latencies")
    if isinstance(data, str):
        from .data import checkpoint_data

        data = checkpoint_data(json.loads(meta.get("edgenas.data", "{}")), data)
    fp32_twin = path.with_name(path.name.replace(".int8.onnx", ".onnx")) if precision == "int8" else None
    models = {path.name: path.read_bytes()}
    if fp32_twin is not None and fp32_twin.is_file():  # measured together, interleaved: the speed-up int8 brings here
        models["fp32"] = fp32_twin.read_bytes()
    predicted = table.predict(arch)
    # the table's calibration networks nearest the model in time, interleaved with it: an error that is the device's
    # drift since profiling (a busy neighbour, another clock speed) is told apart from the table's own
    probes = table.calibration_keys(near_ms=predicted, n=DRIFT_NETWORKS)
    models.update((k, calibration_model(table, k)) for k in probes)
    got = backend.measure(models, table.meta["protocol"])
    info = backend.info()
    measured = got[path.name]
    measured_ms = table.ms(measured)
    result = {
        "model": str(path), "precision": precision, "space": space.name, "arch": arch.to_dict(),
        "size_bytes": path.stat().st_size, "measured_ms": measured_ms, "measured_median_ms": measured["median_ms"],
        "measured_p90_ms": measured["p90_ms"], "statistic": table.statistic, "predicted_ms": predicted, "error": predicted / measured_ms - 1,
        "device": {k: info.get(k) for k in ("device", "cpu_model", "provider", "threads", "hostname")},
    }
    drift = table.drift({k: got[k] for k in probes})
    if drift:  # now / at profiling, median over the networks; the error with the table scaled by it
        result["drift"] = {"ratio": float(np.median(drift)), "networks": len(drift)}
        result["drift_corrected_error"] = predicted * result["drift"]["ratio"] / measured_ms - 1
    if "fp32" in got:
        result["int8_speedup"] = table.ms(got["fp32"]) / measured_ms
    if data is not None:
        known, split = known_top1 or {}, data
        top1 = lambda p: known[str(p)] if str(p) in known else onnx_top1(p, split, arch.r)  # noqa: E731
        result["top1"], result["n"] = top1(path), len(data.val)
        if "fp32" in got and fp32_twin is not None:
            result["top1_change"] = result["top1"] - top1(fp32_twin)
    other = other_cpu(table.meta, info)
    if other:
        result["other_cpu"] = other
        print(f"edgenas: warning: {other}; the latency error is that CPU's, not the table's", file=sys.stderr)
    result["warnings"] = int8_warnings(result.get("int8_speedup"), result.get("top1_change"))
    if precision == "int8" and meta.get("edgenas.int8_weight_bits", "8") == "8" and saturating_cpu(info.get("cpu_features") or []):
        result["warnings"].append("this CPU has no VNNI: its int8 kernels saturate 8-bit weights, which can cost top-1; "
                                  "export with --int8-weight-bits 7 for it")
        print(f"edgenas: warning: {result['warnings'][-1]}", file=sys.stderr)
    return result


def saturating_cpu(features: list[str]) -> bool:
    """An x86 CPU whose int8 kernels sum uint8 x int8 pairs in int16 (AVX2 without VNNI): 8-bit weights can saturate."""
    return "avx2" in features and not {"avx512_vnni", "avx_vnni", "amx_int8"} & set(features)


def int8_warnings(speedup: float | None, top1_change: float | None) -> list[str]:
    """Never ship a slower or much less accurate int8 model silently: the reasons, also printed on stderr."""
    out = []
    if speedup is not None and speedup < 1.0:
        out.append(f"the int8 model is {1 / speedup:.2f}x SLOWER than fp32 on this device: deploy the fp32 model "
                   "(or search a quantization-friendly space such as *-lite with an int8 table)")
    if top1_change is not None and top1_change < -0.01:
        out.append(f"int8 loses {-100 * top1_change:.2f} points of top-1 (more than 1)")
    for w in out:
        print(f"edgenas: warning: {w}", file=sys.stderr)
    return out


#: a quick interleaved fp32-vs-int8 timing at export (the full protocol is ``deploy check``'s)
SPEEDUP_PROTOCOL = {"warmup": 5, "rounds": 3, "runs": 10, "retries": 1}


def export_subnet(space, arch: Arch, out: str | os.PathLike, *, checkpoint: str | None = None, data: str | None = None,
                  num_classes: int | None = None, seed: int = 0, simplify: bool = False, int8: bool = False,
                  calib_images: int = CALIBRATION_IMAGES, bn_images: int = 1000, ort_format: bool = False, mobile: bool = False,
                  check_tables: dict[str, str | None] | None = None, backend=None, time_int8: bool = True,
                  int8_weight_bits: int = 8) -> dict[str, Any]:
    """Extract, export (fp32, optionally int8 / ORT format), evaluate and check one subnet: ``edgenas export``.

    With a checkpoint, the subnet's BN statistics are recalibrated on ``bn_images`` training images
    exactly as ``edgenas eval`` does (same seeded subset), so the exported model scores what eval reports.
    """
    from .cost import stats
    from .data import checkpoint_data, load_data
    from .evaluate import Evaluator
    from .export import export_onnx
    from .io import check_writable
    from .supernet import Supernet, noise_batches, read_checkpoint, recalibrate_bn

    out = check_writable(out)
    split = None
    if checkpoint:
        ckpt = read_checkpoint(checkpoint, space)
        net = Supernet.from_checkpoint(ckpt)
        if num_classes and num_classes != net.num_classes:
            raise ExportError(f"--num-classes {num_classes} contradicts the checkpoint's {net.num_classes} classes")
        if not (ckpt.get("data") or data):
            raise ExportError(f"{checkpoint} records no training data: give --data, whose images recalibrate the subnet's BN statistics")
        split = checkpoint_data(ckpt.get("data"), data)
        # the supernet's shared BN statistics are wrong for any subnet but the largest: recalibrate, as evaluation does
        model = Evaluator(split, calib_images=bn_images, seed=seed).calibrated_subnet(net, arch).cpu()
    else:  # seeded random weights, BN statistics from seeded noise: for latency work before training
        if int8 and not data:
            raise ExportError("--int8 needs calibration images: give --checkpoint (its training data) or --data")
        model = Supernet(space, num_classes, seed=seed).extract(arch)
        recalibrate_bn(model, noise_batches(arch.r, seed=seed)).eval()
        split = load_data(data) if data else None
    res = export_onnx(model, arch.r, out, simplify=simplify, metadata=model_metadata(space, arch, "fp32", split))
    spec: Any = model.spec  # a SubNet's NetSpec
    st = stats(space, arch, int(spec.head.num_classes))
    r: dict[str, Any] = {"path": str(res.path), "max_abs_diff": res.max_abs_diff, "opset": res.opset, "simplified": res.simplified,
                         **st.to_dict(), "space": space.name, "arch": arch.to_dict(), "size_bytes": out.stat().st_size}
    models = {"fp32": out}
    if split is not None and len(split.val):
        r["top1_fp32"], r["n"] = onnx_top1(out, split, arch.r), len(split.val)
    if int8:
        assert split is not None  # checked above: int8 needs calibration images
        qpath = out.with_name(out.stem + ".int8.onnx")
        quantize_model(out, qpath, calibration_batches(split, arch.r, calib_images), int8_weight_bits)
        r.update(int8_path=str(qpath), int8_size_bytes=qpath.stat().st_size)
        models["int8"] = qpath
        if "top1_fp32" in r:
            r["top1_int8"] = onnx_top1(qpath, split, arch.r)
        if not (check_tables or {}).get("int8"):  # else the device check below measures it against fp32, and warns
            if time_int8:
                speed = (backend or LocalBackend()).measure({"fp32": out.read_bytes(), "int8": qpath.read_bytes()}, SPEEDUP_PROTOCOL)
                stat = str(DEFAULT_PROTOCOL["statistic"])
                r["int8_speedup"] = latency_ms(speed["fp32"], stat) / latency_ms(speed["int8"], stat)
            r["int8_warnings"] = int8_warnings(r.get("int8_speedup"), r["top1_int8"] - r["top1_fp32"] if "top1_int8" in r else None)
    if ort_format:
        r["ort"] = [to_ort_format(m) for m in models.values()]
    if mobile:
        r["mobile"] = mobile_report(out)
    if check_tables:
        scored = {str(m): r[f"top1_{p}"] for p, m in models.items() if f"top1_{p}" in r}
        r["check"] = [deploy_check(m, LatencyTable.load(str(check_tables[p])), backend, split, scored)
                      for p, m in models.items() if check_tables.get(p)]
        for c in r["check"]:
            if c["precision"] == "int8":
                r["int8_speedup"], r["int8_warnings"] = c.get("int8_speedup"), c["warnings"]
    return r


def measure_int8_drop(space, checkpoint: str, *, data: str | None = None, n: int = 5, seed: int = 0) -> float:
    """Mean top-1 (a fraction) that static int8 costs over ``n`` random subnets of ``checkpoint``, on its held-out split."""
    rng = np.random.default_rng([seed, 8])
    drops = []
    with tempfile.TemporaryDirectory(prefix="edgenas-int8-") as tmp:
        for i in range(n):
            arch = space.sample(rng)
            r = export_subnet(space, arch, Path(tmp) / f"{i}.onnx", checkpoint=checkpoint, data=data, int8=True, time_int8=False)
            if "top1_int8" not in r:
                raise ExportError("measuring the int8 drop needs held-out images: the checkpoint's data has no validation split")
            drops.append(r["top1_fp32"] - r["top1_int8"])
    return float(np.mean(drops))
