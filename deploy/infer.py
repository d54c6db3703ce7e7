#!/usr/bin/env python3
"""Classify images with a model exported by edgenas: numpy + onnxruntime only (Pillow optional).

    python3 infer.py model.onnx image.jpg [image2.png ...] [--top 5] [--threads 1] [--provider cpu|openvino]

Preprocessing is read from the model's metadata and done exactly as in training: RGB uint8 / 255,
bilinear antialiased resize (the same filter as torch's ``interpolate(..., antialias=True)``) to
the model's resolution, per-channel (x - mean) / std, NCHW.  Images: anything Pillow opens, or,
without Pillow, ``.npy`` (H x W x 3 uint8) and binary ``.ppm``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort


def load_image(path: str) -> np.ndarray:
    """H x W x 3 uint8 RGB."""
    p = Path(path)
    if p.suffix.lower() == ".npy":
        img = np.load(p)
    elif p.suffix.lower() == ".ppm":
        data = p.read_bytes()
        parts = data.split(maxsplit=4)
        if parts[0] != b"P6":
            raise ValueError(f"{path}: only binary (P6) PPM is supported")
        w, h = int(parts[1]), int(parts[2])
        img = np.frombuffer(parts[4][: w * h * 3], dtype=np.uint8).reshape(h, w, 3)
    else:
        try:
            from PIL import Image
        except ImportError:
            raise SystemExit(f"{path}: install Pillow to read {p.suffix} files (or pass .npy / .ppm)") from None
        img = np.asarray(Image.open(p).convert("RGB"))
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(f"{path}: expected an H x W x 3 uint8 RGB image, got {img.shape} {img.dtype}")
    return img


def _resize_weights(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) antialiased bilinear (triangle) weights, align_corners=False."""
    scale = n_in / n_out
    support = max(scale, 1.0)
    w = np.zeros((n_out, n_in))
    for i in range(n_out):
        center = (i + 0.5) * scale
        lo, hi = max(int(center - support + 0.5), 0), min(int(center + support + 0.5), n_in)
        j = np.arange(lo, hi)
        k = np.clip(1.0 - np.abs((j - center + 0.5) / support), 0.0, None)
        w[i, lo:hi] = k / k.sum()
    return w


def preprocess(img: np.ndarray, resolution: int, mean, std) -> np.ndarray:
    x = img.astype(np.float32).transpose(2, 0, 1) / 255.0  # 3 x H x W
    h, w = x.shape[1:]
    if (h, w) != (resolution, resolution):
        wy, wx = _resize_weights(h, resolution), _resize_weights(w, resolution)
        x = np.einsum("oh,chw,pw->cop", wy, x, wx).astype(np.float32)
    x = (x - np.asarray(mean, np.float32)[:, None, None]) / np.asarray(std, np.float32)[:, None, None]
    return x[None]


#: --provider: ONNX Runtime's CPU kernels, or OpenVINO's (Intel CPUs; the onnxruntime-openvino package), held to
#: --threads and float32 as edgenas's latency agent holds it
PROVIDERS = {"cpu": "CPUExecutionProvider", "openvino": "OpenVINOExecutionProvider"}


def session_providers(provider: str, threads: int) -> list:
    if provider == "openvino":
        return [(PROVIDERS[provider], {"device_type": "CPU", "num_of_threads": str(threads), "precision": "FP32"}), "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


class Classifier:
    def __init__(self, model: str, threads: int = 1, provider: str = "cpu"):
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        self.session = ort.InferenceSession(model, so, providers=session_providers(provider, threads))
        meta = self.session.get_modelmeta().custom_metadata_map
        if "edgenas.resolution" not in meta:
            raise SystemExit(f"{model} has no edgenas metadata (export it with `edgenas export`)")
        self.resolution = int(meta["edgenas.resolution"])
        self.mean = json.loads(meta.get("edgenas.mean", "[0.5, 0.5, 0.5]"))
        self.std = json.loads(meta.get("edgenas.std", "[0.25, 0.25, 0.25]"))
        self.classes = json.loads(meta.get("edgenas.classes", "[]"))

    def __call__(self, img: np.ndarray) -> np.ndarray:
        """Class probabilities of one image."""
        logits = self.session.run(None, {"input": preprocess(img, self.resolution, self.mean, self.std)})[0][0]
        e = np.exp(logits - logits.max())
        return e / e.sum()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("images", nargs="+")
    ap.add_argument("--top", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--provider", choices=sorted(PROVIDERS), default="cpu",
                    help="openvino: OpenVINO's kernels on an Intel CPU (pip install onnxruntime-openvino, in place of onnxruntime)")
    args = ap.parse_args(argv)
    if args.top < 1 or not 1 <= args.threads <= 1024:
        ap.error("--top must be >= 1 and --threads from 1 to 1024")
    if PROVIDERS[args.provider] not in ort.get_available_providers():
        return _fail(f"--provider {args.provider} is not in this onnxruntime (it has {', '.join(ort.get_available_providers())}); "
                     "for openvino: pip install onnxruntime-openvino, in place of onnxruntime")
    if not Path(args.model).is_file():
        ap.error(f"model not found: {args.model}")
    try:
        clf = Classifier(args.model, args.threads, args.provider)
    except (ValueError, TypeError, KeyError) as exc:
        return _fail(f"{args.model} has malformed edgenas metadata ({exc})")
    except Exception as exc:  # ONNX Runtime raises its own types for files that are not models
        return _fail(f"cannot load model {args.model}: {str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__}")
    for path in args.images:
        try:
            img = load_image(path)
        except Exception as exc:  # a missing file, or one Pillow / numpy cannot read as an image
            return _fail(f"cannot read image {path}: {str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__}")
        probs = clf(img)
        top = np.argsort(-probs)[: args.top]
        names = [clf.classes[i] if i < len(clf.classes) else str(i) for i in top]
        print(path + ": " + ", ".join(f"{n} {probs[i]:.3f}" for n, i in zip(names, top)))
    return 0


def _fail(message: str) -> int:
    print(f"infer.py: error: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
