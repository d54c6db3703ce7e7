"""Supernets the project trained, shipped inside the package.

A built-in name (``cifar10``) is accepted wherever a checkpoint or predictor path is: a file of
that name in the working directory wins, so a built-in name never hides a user's file.  Each
model's folder holds its bf16 weights (loaded back to fp32), its accuracy predictor, the training
metrics and config, a model card (``card.json`` and ``MODEL_CARD.md``), and 100 images a class of
its data (``calibration.zip`` from the training split, ``heldout.zip`` from the held-out split),
so the model is recalibrated, exported and scored on a machine without the dataset.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

__all__ = ["BUILTIN", "card", "data_record", "resolve_checkpoint", "resolve_predictor", "sample_files"]

ROOT = Path(__file__).resolve().parent
BUILTIN = ("cifar10",)


def _builtin(value: str | os.PathLike, file: str) -> Path:
    path = Path(value)
    if str(value) in BUILTIN and not path.exists():
        return ROOT / str(value) / file
    return path


def resolve_checkpoint(value: str | os.PathLike) -> Path:
    """A checkpoint path, or the weights of a built-in name."""
    return _builtin(value, "supernet.pt")


def resolve_predictor(value: str | os.PathLike) -> Path:
    """A predictor path, or the accuracy predictor fitted for a built-in name."""
    return _builtin(value, "predictor.json")


def card(name: str) -> dict[str, Any]:
    """The model card of a built-in supernet (what it was trained on, how, and what it measured)."""
    if name not in BUILTIN:
        raise KeyError(f"no built-in supernet '{name}' (built-in: {', '.join(BUILTIN)})")
    return json.loads((ROOT / name / "card.json").read_text())


def _trained_on(info: dict[str, Any]) -> str | None:
    """The built-in supernet trained on the data ``info`` records (by its fingerprint), or None."""
    for name in BUILTIN:
        if info.get("fingerprint") and (ROOT / name / "card.json").is_file() and card(name)["data"]["fingerprint"] == info["fingerprint"]:
            return name
    return None


def data_record(info: dict[str, Any]) -> dict[str, Any]:
    """``info`` (a data record), with the digests the model card of the built-in supernet trained on that
    data adds (those recorded after its weights shipped, such as ``files_fingerprint``)."""
    name = _trained_on(info)
    if name is None:
        return info
    return {**{k: v for k, v in card(name)["data"].items() if k.endswith("fingerprint")}, **info}


def sample_files(info: dict[str, Any]) -> tuple[str, Path, Path] | None:
    """(name, calibration.zip, heldout.zip) of the built-in supernet trained on the data ``info``
    records (matched by the data's fingerprint, never by a path from the file), or None."""
    name = _trained_on(info)
    return None if name is None else (name, ROOT / name / "calibration.zip", ROOT / name / "heldout.zip")
