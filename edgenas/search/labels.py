"""Subnet labels (which held-out images each subnet classifies right), kept on disk as they are measured.

Labelling is the slow part of ``edgenas predictor``: about 14 s a cifar-mbv3 subnet on a 2-core CPU (300 took
72 minutes).  With the labels kept beside the predictor, an interrupted or time-limited run goes on
where it stopped, and a rerun with more ``--samples`` (``sample_archs`` draws are prefix-stable) labels only the
new subnets.  The file is keyed by everything a label depends on: the supernet's weights, the held-out images
and the BN calibration images; labels made with anything else are never reused.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ..data import fingerprint
from ..io import atomic_path
from .objectives import SearchError

__all__ = ["LabelFile", "labels_key", "labels_path"]


def labels_path(predictor: str | os.PathLike) -> Path:
    """Where ``edgenas predictor --out P.json`` keeps its labels: ``P.labels.npz`` beside it."""
    p = Path(predictor)
    return p.with_name(f"{p.stem if p.suffix == '.json' else p.name}.labels.npz")


def labels_key(net: Any, evaluator: Any) -> str:
    """Digest of what makes a label: the weights, the images scored and the images BN statistics come from."""
    h = hashlib.sha256()
    for name, t in net.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    h.update(fingerprint(evaluator.data.val).encode())
    h.update(evaluator.calib.images.cpu().contiguous().numpy().tobytes())
    h.update(repr((evaluator.data.mean, evaluator.data.std)).encode())
    return h.hexdigest()[:32]


class LabelFile:
    """Correctness rows by arch vector, read from ``path`` if it holds labels of the same ``key``, and written
    back atomically at most every ``save_every`` seconds and on ``save()``: a kill loses at most that long."""

    def __init__(self, path: str | os.PathLike, key: str, n_images: int, save_every: float = 10.0):
        self.path, self.key, self.n, self.save_every = Path(path), key, n_images, save_every
        self._rows: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}
        self._dirty, self._saved = False, time.monotonic()
        self.added = 0  # rows measured in this process
        if self.path.exists():
            self._read()

    def _read(self) -> None:
        try:
            with np.load(self.path, allow_pickle=False) as f:
                key, n, X, bits = str(f["key"]), int(f["n"]), np.asarray(f["X"], dtype=np.int64), f["bits"]
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            raise SearchError(f"{self.path} is not an edgenas labels file ({type(exc).__name__}); delete it or choose "
                              "another --out") from None
        if key != self.key or n != self.n:
            print(f"{self.path} holds labels of other weights or images; labelling starts over", file=sys.stderr)
            self._dirty = True  # replaced at the first save
            return
        if X.ndim != 2 or bits.shape != (len(X), -(-n // 8)):
            raise SearchError(f"{self.path} is malformed (its X and bits do not match); delete it or choose another --out")
        rows = np.unpackbits(bits, axis=1, count=n).astype(bool)
        self._rows = {x.tobytes(): (x, r) for x, r in zip(X, rows)}

    def __len__(self) -> int:
        return len(self._rows)

    def get(self, x: np.ndarray) -> np.ndarray | None:
        hit = self._rows.get(np.asarray(x, dtype=np.int64).tobytes())
        return None if hit is None else hit[1]

    def add(self, x: np.ndarray, row: np.ndarray) -> None:
        x = np.asarray(x, dtype=np.int64)
        self._rows[x.tobytes()] = (x, np.asarray(row, dtype=bool))
        self._dirty, self.added = True, self.added + 1
        if time.monotonic() - self._saved >= self.save_every:
            self.save()

    def save(self) -> None:
        if not self._dirty:
            return
        X = np.stack([x for x, _ in self._rows.values()]) if self._rows else np.zeros((0, 0), dtype=np.int64)
        bits = np.packbits(np.stack([r for _, r in self._rows.values()]), axis=1) if self._rows else np.zeros((0, -(-self.n // 8)), np.uint8)
        with atomic_path(self.path) as tmp, open(tmp, "wb") as f:  # a file object: np.savez would add .npz to a path
            np.savez(f, key=np.array(self.key), n=np.array(self.n), X=X, bits=bits)
        self._dirty, self._saved = False, time.monotonic()
